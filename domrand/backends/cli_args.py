"""``--backend``, ``--workers`` and ``--address`` for ``domrand train`` and ``domrand guide``."""

from __future__ import annotations

import argparse
from typing import Any

from domrand.backends.base import BACKENDS, BackendError

__all__ = ["add_backend_args", "backend_changes"]


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        metavar="NAME",
        help=f"where rollouts run: {', '.join(BACKENDS)} (default: the config's, else subprocess)",
    )
    p.add_argument("--workers", metavar="N", help="backend workers (default: one per core/CPU)")
    p.add_argument("--address", metavar="ADDR", help="ray: 'auto' (running cluster) or HOST:PORT")


def backend_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig keys the flags set (checked here, so a typo is one clear line)."""
    changes: dict[str, Any] = {}
    backend = getattr(args, "backend", None)
    if backend is not None:
        if backend not in BACKENDS:
            raise BackendError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        changes["backend"] = backend
    workers = getattr(args, "workers", None)
    if workers is not None:
        try:
            n = int(workers)
        except ValueError:
            n = -1
        if n < 0:
            raise BackendError(f"--workers must be an integer >= 0 (0 = auto), got {workers!r}")
        changes["workers"] = n
    address = getattr(args, "address", None)
    if address is not None:
        changes["address"] = address
        changes.setdefault("backend", "ray")
    return changes
