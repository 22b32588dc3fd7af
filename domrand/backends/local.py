"""``local``: workers are plain objects in this process, run one after the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerHandle, WorkerHost

__all__ = ["LocalBackend"]


class _LocalHandle(WorkerHandle):
    def __init__(self) -> None:
        self.host = WorkerHost()
        self._pending: tuple[Callable[..., Any], tuple[Any, ...]] | None = None

    def send(self, fn: Callable[..., Any], *args: Any) -> None:
        self._pending = (fn, args)

    def recv(self) -> Any:
        if self._pending is None:
            raise BackendError("recv() without send() on a local worker")
        fn, args = self._pending
        self._pending = None
        return self.host.run(fn, args)

    def close(self) -> None:
        self.host.close()


class LocalBackend(Backend):
    """In-process workers (no parallelism): the reference every other backend must match."""

    kind = "local"

    def default_workers(self) -> int:
        return 1

    def _new_handle(self, index: int) -> WorkerHandle:
        return _LocalHandle()
