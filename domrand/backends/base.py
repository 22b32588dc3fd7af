"""Rollout backends: where env steps and guided-DR evaluations run.

A backend is a pool of ``workers``; each worker is a :class:`WorkerHost` (in this process for
``local``, a child process for ``subprocess``, a Ray actor for ``ray``) that keeps named resources
(vector envs, env pools) alive across calls, so envs are built once, not per batch. The main
process talks to a worker through a :class:`WorkerHandle`: one outstanding call at a time
(``send`` then ``recv``), which is all the lockstep trainer and the batched guides need.

A call is a picklable top-level function ``fn(host, *args)`` run on the worker. A dead worker
surfaces as :class:`WorkerDied` from ``recv``; :meth:`Backend.restart` replaces it with a fresh
(empty) worker, and the caller rebuilds what it kept there (see ``vector.py`` and ``pool.py``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domrand.errors import DomrandError

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "BackendError",
    "WorkerDied",
    "WorkerHandle",
    "WorkerHost",
    "ping",
]

BACKENDS = ("local", "subprocess", "ray")


class BackendError(DomrandError):
    """A backend cannot be used as configured (unknown name, Ray missing, bad address...)."""


class WorkerDied(Exception):
    """Internal: the worker behind a handle is gone (killed, crashed); restart it."""


@dataclass(frozen=True)
class BackendConfig:
    """Which backend, how many workers, and (Ray) which cluster.

    Args:
        kind: ``"local"`` (in-process, sequential), ``"subprocess"`` (child processes on this
            machine, the default) or ``"ray"`` (Ray actors, ``pip install domrand[ray]``).
        workers: worker count; 0 = one per core of this machine (Ray: of the cluster), capped
            by the number of envs of a vector env.
        address: Ray only: ``"auto"`` (a running cluster), ``"HOST:PORT"``, or ``None`` (start
            a local Ray instance unless one is already initialized in this process).
    """

    kind: str = "subprocess"
    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise BackendError(f"backend must be one of {', '.join(BACKENDS)}, got {self.kind!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int):
            raise BackendError(f"workers must be an integer >= 0, got {self.workers!r}")
        if self.workers < 0:
            raise BackendError(f"workers must be an integer >= 0 (0 = auto), got {self.workers}")
        if self.address is not None and self.kind != "ray":
            raise BackendError(f"address is for the ray backend only (backend is {self.kind!r})")
        if self.address is not None and not (
            self.address == "auto" or _host_port(self.address) or "://" in self.address
        ):
            raise BackendError(
                f"address must be 'auto', HOST:PORT or ray://HOST:PORT, got {self.address!r}"
            )


def _host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())


class WorkerHost:
    """The worker side: named resources kept across calls, and the calls run against them."""

    def __init__(self) -> None:
        self.resources: dict[Any, Any] = {}
        self.calls = 0
        _quiet_torch()

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self.calls += 1
        return fn(self, *args)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        for value in self.resources.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()
        self.resources.clear()


def ping(host: WorkerHost) -> int:
    """An empty call (its worker's pid): for health checks and round-trip measurements."""
    return host.pid()


def _quiet_torch() -> None:
    """One torch thread in a worker: its matmuls take microseconds (see guided/_threads.py)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class WorkerHandle(ABC):
    """The main-process end of one worker."""

    @abstractmethod
    def send(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start ``fn(host, *args)`` on the worker (one outstanding call at a time)."""

    @abstractmethod
    def recv(self) -> Any:
        """The result of the outstanding call; raises :class:`WorkerDied` if the worker is gone,
        or re-raises the exception the call raised."""

    @abstractmethod
    def close(self) -> None:
        """Stop the worker (best effort, never raises)."""

    def kill(self) -> None:
        """Kill the worker abruptly (fault-injection in tests and benchmarks)."""
        raise BackendError(f"{type(self).__name__} workers cannot be killed")

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.send(fn, *args)
        return self.recv()


class Backend(ABC):
    """A pool of workers. Use :func:`domrand.backends.open_backend` to create one."""

    kind = ""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.handles: list[WorkerHandle] = []
        self.restarts = 0  #: workers replaced after dying
        self._closed = False

    @property
    def num_workers(self) -> int:
        return len(self.handles)

    def default_workers(self) -> int:
        """Workers when ``config.workers`` is 0 (auto)."""
        return max(1, os.cpu_count() or 1)

    def start(self, workers: int | None = None) -> Backend:
        n = workers or self.config.workers or self.default_workers()
        self.handles = [self._new_handle(i) for i in range(n)]
        return self

    @abstractmethod
    def _new_handle(self, index: int) -> WorkerHandle:
        """Start worker ``index``."""

    def restart(self, index: int) -> WorkerHandle:
        """Replace worker ``index`` (dead or not) by a fresh, empty one."""
        self.handles[index].close()
        self.handles[index] = self._new_handle(index)
        self.restarts += 1
        return self.handles[index]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for h in self.handles:
            h.close()
        self.handles = []

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.num_workers}, restarts={self.restarts})"
