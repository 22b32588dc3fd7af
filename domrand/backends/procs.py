"""``subprocess``: one child process per worker on this machine, talking over a pipe."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import weakref
from collections.abc import Callable
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerDied, WorkerHandle, WorkerHost

__all__ = ["ConnectionHandle", "SubprocessBackend", "serve"]


def _dumps(obj: Any) -> bytes:
    """Pickle ``obj``; closures and lambdas (a probe controller) go through cloudpickle."""
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as first:
        try:
            import cloudpickle  # type: ignore[import-not-found]
        except ImportError:
            try:
                from ray import cloudpickle  # type: ignore[no-redef]
            except ImportError:
                raise BackendError(
                    f"cannot send {type(obj).__name__} to a worker process ({first}); use "
                    "backend local"
                ) from None
        return bytes(cloudpickle.dumps(obj))


#: the main process's ends of every worker's pipe; a forked worker closes its copies, so that
#: when the main process dies (even by SIGKILL) each worker reads EOF and exits
_PARENT_ENDS: weakref.WeakSet[Any] = weakref.WeakSet()


def _worker_main(conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    for end in list(_PARENT_ENDS):
        with contextlib.suppress(OSError):
            end.close()
    serve(conn, WorkerHost())


def serve(conn: Any, host: WorkerHost) -> None:
    """The worker loop: run each call that arrives on ``conn`` until ``None`` or EOF."""
    try:
        while True:
            try:
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                call = pickle.loads(msg)
                if call is None:
                    break
                fn, args = call
                reply = ("ok", host.run(fn, args))
                data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # sent back and re-raised in the main process
                try:
                    data = pickle.dumps(("err", e), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:
                    data = pickle.dumps(("err", RuntimeError(f"{type(e).__name__}: {e}")))
            conn.send_bytes(data)
    finally:
        host.close()
        conn.close()


class ConnectionHandle(WorkerHandle):
    """A worker at the other end of a ``multiprocessing`` connection (pipe or socket)."""

    conn: Any
    pid: int

    def send(self, fn: Callable[..., Any], *args: Any) -> None:
        data = _dumps((fn, args))
        try:
            self.conn.send_bytes(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise WorkerDied(f"worker process {self.pid} is gone") from None

    def recv(self) -> Any:
        try:
            status, value = pickle.loads(self.conn.recv_bytes())
        except (EOFError, ConnectionResetError, OSError):
            raise WorkerDied(f"worker process {self.pid} died") from None
        if status == "err":
            raise value
        return value


class _ProcessHandle(ConnectionHandle):
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe(duplex=True)
        _PARENT_ENDS.add(parent)  # closed in the worker (it inherits it when forked)
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()  # only the worker holds its end: its death reads as EOF here
        self.conn = parent
        self.pid = self.proc.pid

    def kill(self) -> None:
        if self.proc.is_alive():
            os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                with contextlib.suppress(OSError):
                    self.conn.send_bytes(pickle.dumps(None))
                self.proc.join(timeout=2)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(timeout=2)
            self.conn.close()
        except Exception:  # closing must never raise
            pass


class SubprocessBackend(Backend):
    """Child processes (fork on Linux/macOS, spawn on Windows), each hosting one worker."""

    kind = "subprocess"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ctx = mp.get_context("spawn" if os.name == "nt" else "fork")

    def _new_handle(self, index: int) -> WorkerHandle:
        return _ProcessHandle(self._ctx)
