"""Policies and controllers (installed as ``domrand.policies``).

Imports are lazy (PEP 562): ``domrand.policies.deploy`` must import on a robot with only numpy
and onnxruntime, so this package must not import torch (``networks``, the trainer) eagerly.
Add new public names to ``_LAZY`` rather than importing them here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it (loaded on first attribute access)
_LAZY = {
    "ActorCritic": "domrand.policies.networks",
    "NetConfig": "domrand.policies.networks",
    "RunInfo": "domrand.policies.checkpoint",
    "TrainConfig": "domrand.policies.config",
    "load_policy": "domrand.policies.checkpoint",
    "CartPoleLQR": "domrand.policies.controllers",
    "ExportedPolicy": "domrand.policies.deploy",
    "load_exported": "domrand.policies.deploy",
}

if TYPE_CHECKING:
    from domrand.policies.checkpoint import RunInfo, load_policy
    from domrand.policies.config import TrainConfig
    from domrand.policies.controllers import CartPoleLQR
    from domrand.policies.deploy import ExportedPolicy, load_exported
    from domrand.policies.networks import ActorCritic, NetConfig


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'domrand.policies' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ActorCritic",
    "CartPoleLQR",
    "ExportedPolicy",
    "NetConfig",
    "RunInfo",
    "TrainConfig",
    "load_exported",
    "load_policy",
]
