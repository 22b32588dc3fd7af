"""Rollout backends (``local``, ``subprocess``, ``ray``) behind the trainer and the guides.

* :func:`open_backend` gives a started pool of workers for a :class:`BackendConfig`; pools are
  shared and reference-counted inside one process, so the trainer's vector env and a guide's
  evaluation pools (Active DR, SimOpt) reuse the same workers (each keeps its own envs there).
* :class:`BackendVectorEnv` (``vector.py``) is a gymnasium vector env whose envs live on the
  workers; :func:`run_chunks` (``pool.py``) runs a batch of independent evaluation chunks on them.
"""

from __future__ import annotations

from domrand.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    BackendError,
    WorkerDied,
    WorkerHandle,
    WorkerHost,
)
from domrand.backends.pool import run_chunks
from domrand.backends.vector import BackendVectorEnv, EnvRecipe

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "BackendError",
    "BackendVectorEnv",
    "EnvRecipe",
    "WorkerDied",
    "WorkerHandle",
    "WorkerHost",
    "open_backend",
    "run_chunks",
]

_shared: dict[BackendConfig, tuple[Backend, int]] = {}


def _create(config: BackendConfig) -> Backend:
    if config.kind == "local":
        from domrand.backends.local import LocalBackend

        return LocalBackend(config)
    if config.kind == "subprocess":
        from domrand.backends.procs import SubprocessBackend

        return SubprocessBackend(config)
    from domrand.backends.ray_backend import RayBackend

    return RayBackend(config)


def open_backend(config: BackendConfig | str) -> Backend:
    """A started backend for ``config`` (shared with other users of the same config in this
    process); call ``close()`` when done, the last close stops the workers."""
    if isinstance(config, str):
        config = BackendConfig(config)
    entry = _shared.get(config)
    if entry is not None and not entry[0]._closed:
        _shared[config] = (entry[0], entry[1] + 1)
        return entry[0]
    backend = _create(config)
    try:
        backend.start()
    except BaseException:
        backend.close()
        raise
    _shared[config] = (backend, 1)
    original_close = backend.close

    def close() -> None:
        backend_entry = _shared.get(config)
        if backend_entry is not None and backend_entry[0] is backend:
            refs = backend_entry[1] - 1
            if refs > 0:
                _shared[config] = (backend, refs)
                return
            del _shared[config]
        original_close()

    backend.close = close  # type: ignore[method-assign]
    return backend
