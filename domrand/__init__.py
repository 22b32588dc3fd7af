"""domrand: sim-to-real domain randomization for PyBullet, behind the gymnasium API.

Quick start::

    import numpy as np, domrand
    spec = domrand.load_spec("assets/specs/cartpole.yaml")
    domain = spec.sample(np.random.default_rng(0))          # {"pole.mass": 0.13, ...}
    env = domrand.make("domrand/CartPole-v0", spec=spec, seed=0)
    obs, info = env.reset()                                   # info["domain"]: what was applied

Imports are lazy (PEP 562): ``import domrand`` loads only the error types, and each public name
below loads its module on first use. This keeps ``domrand.policies.deploy`` importable on a
robot that has numpy and onnxruntime but not gymnasium, pybullet or torch. When gymnasium is
installed, importing domrand still registers its envs, so ``gymnasium.make("domrand/...")``
works after ``import domrand`` as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from domrand.errors import (
    CheckpointError,
    DomrandError,
    EnvMismatchError,
    KnobError,
    SpecError,
    SpecFileError,
    SpecKeyError,
    SpecRangeError,
    SpecSyntaxError,
    SpecTypeError,
    SpecValueError,
    UnknownKnobError,
)

__version__ = "0.1.0"

# public name -> the module that defines it (loaded on first attribute access)
_LAZY = {
    "Knob": "domrand.knobs",
    "KnobSet": "domrand.knobs",
    "Phase": "domrand.knobs",
    "default_spec_path": "domrand.registry",
    "env_ids": "domrand.registry",
    "knobs_for": "domrand.registry",
    "make": "domrand.registry",
    "make_vec": "domrand.registry",
    "realities": "domrand.registry",
    "register_all": "domrand.registry",
    "Domain": "domrand.spec",
    "ParamVector": "domrand.spec",
    "RandomizationSpec": "domrand.spec",
    "load_domain": "domrand.spec",
    "load_spec": "domrand.spec",
    "DomainRandomization": "domrand.wrappers",
}
# submodules that `import domrand` used to load eagerly (``domrand.spec.X`` keeps working)
_SUBMODULES = frozenset(
    {"distributions", "knobs", "registry", "spec", "spec_io", "spec_parse", "wrappers"}
)

if TYPE_CHECKING:  # static analysers see the names as if imported eagerly
    from domrand.knobs import Knob, KnobSet, Phase
    from domrand.registry import (
        default_spec_path,
        env_ids,
        knobs_for,
        make,
        make_vec,
        realities,
        register_all,
    )
    from domrand.spec import Domain, ParamVector, RandomizationSpec, load_domain, load_spec
    from domrand.wrappers import DomainRandomization


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"domrand.{name}")
    else:
        raise AttributeError(f"module 'domrand' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


def _register_envs() -> None:
    """Register the envs with gymnasium if it is installed (a deploy-only install has none)."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:
        return
    from domrand.registry import register_all

    register_all()


_register_envs()

__all__ = [
    "CheckpointError",
    "Domain",
    "DomainRandomization",
    "DomrandError",
    "EnvMismatchError",
    "Knob",
    "KnobError",
    "KnobSet",
    "ParamVector",
    "Phase",
    "RandomizationSpec",
    "SpecError",
    "SpecFileError",
    "SpecKeyError",
    "SpecRangeError",
    "SpecSyntaxError",
    "SpecTypeError",
    "SpecValueError",
    "UnknownKnobError",
    "__version__",
    "default_spec_path",
    "env_ids",
    "knobs_for",
    "load_domain",
    "load_spec",
    "make",
    "make_vec",
    "realities",
    "register_all",
]
