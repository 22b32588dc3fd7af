"""``ray``: one Ray actor per worker, on a local Ray instance or a cluster (``--address``).

Ray places the actors (1 CPU each), restarts nothing by itself, and reports their deaths; the
calls themselves go over a direct connection from each actor back to the driver (the
``multiprocessing`` connection protocol with an auth key, the same loop as a subprocess worker),
because a Ray actor call costs about a millisecond, which a lockstep env step cannot afford (see
benchmarks/results/backends.md). An actor on the driver's machine connects over a Unix socket
(what a subprocess worker's pipe is; half the round trip of loopback TCP), one on another node
over TCP (``TCP_NODELAY``) to an ephemeral port of the driver, which it must be able to reach;
``DOMRAND_RAY_CHANNEL=ray`` sends every call through Ray instead.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
import select
import socket
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Client, Listener
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerDied, WorkerHandle, WorkerHost
from domrand.backends.procs import ConnectionHandle, serve

__all__ = ["RayBackend", "normal_worker_priority"]

CONNECT_TIMEOUT_S = 120.0  #: an actor not started or connected back by then is an error


class _RayWorker:
    """The actor: a :class:`WorkerHost` in a Ray worker process."""

    def __init__(self) -> None:
        self.host = WorkerHost()

    def pid(self) -> int:
        return self.host.pid()

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self.host.run(fn, args)

    def serve(self, address: tuple[str, int], local: str, authkey: bytes, token: str) -> int:
        """Connect back to the driver (over the Unix socket ``local`` when it exists here, else
        TCP to ``address``) and serve calls until it says stop (or goes away)."""
        conn = None
        if os.path.exists(local):  # the driver's machine
            with contextlib.suppress(OSError):
                conn = Client(local, family="AF_UNIX", authkey=authkey)
        if conn is None:
            conn = Client(address, authkey=authkey)
            _no_delay(conn)
        conn.send(token)
        serve(conn, self.host)
        return 0


def _no_delay(conn: Any) -> None:
    """TCP_NODELAY on a TCP connection: a request or reply goes out at once (no Nagle wait)."""
    with contextlib.suppress(OSError):
        sock = socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM)  # a dup
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        finally:
            sock.close()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError(
            "the ray backend needs Ray: pip install 'domrand[ray]' (or pip install ray)"
        ) from None
    return ray


class _RayCallHandle(WorkerHandle):
    """Calls through Ray itself (``DOMRAND_RAY_CHANNEL=ray``)."""

    def __init__(self, actor: Any, pid: int) -> None:
        self.actor, self.pid = actor, pid
        self._ref: Any = None

    def send(self, fn: Callable[..., Any], *args: Any) -> None:
        self._ref = self.actor.run.remote(fn, args)

    def recv(self) -> Any:
        ray = _ray()
        ref, self._ref = self._ref, None
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError:
            raise WorkerDied(f"ray actor (pid {self.pid}) died") from None
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def kill(self) -> None:
        _ray().kill(self.actor, no_restart=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never raise
            _ray().kill(self.actor, no_restart=True)


class _RaySocketHandle(ConnectionHandle):
    """Calls over the actor's direct connection to the driver."""

    def __init__(self, actor: Any, pid: int, conn: Any, serving: Any) -> None:
        self.actor, self.pid, self.conn, self.serving = actor, pid, conn, serving

    def kill(self) -> None:
        _ray().kill(self.actor, no_restart=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never raise
            self.conn.send_bytes(pickle.dumps(None))
            self.conn.close()
        with contextlib.suppress(Exception):
            _ray().kill(self.actor, no_restart=True)


def normal_worker_priority() -> None:
    """Start a local Ray instance's workers at normal priority (unless the user chose otherwise).

    Ray starts its worker processes at nice 15. The actors are where domrand's work runs, so on
    a machine busy with other jobs they were starved: on the 2-core VM at load average ~6 an
    actor did not finish starting within 120 s (measured), while at nice 0 it started in
    seconds. Only affects an instance started by this process (``RAY_worker_niceness`` is read
    when the raylet starts).
    """
    os.environ.setdefault("RAY_worker_niceness", "0")


class RayBackend(Backend):
    """Ray actors (1 CPU each). Connects to ``address`` or starts a local Ray instance."""

    kind = "ray"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ray = _ray()
        if not ray.is_initialized():
            normal_worker_priority()
            try:
                ray.init(
                    address=self.config.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as e:
                where = self.config.address or "a local instance"
                raise BackendError(f"cannot start or reach Ray at {where}: {e}") from None
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self._socket = os.environ.get("DOMRAND_RAY_CHANNEL", "socket") != "ray"
        self._listener: Listener | None = None
        self._local: Listener | None = None  #: the Unix socket for actors on this machine
        self._authkey = secrets.token_bytes(32)

    def cluster_cpus(self) -> int:
        return int(_ray().cluster_resources().get("CPU", 1))

    def default_workers(self) -> int:
        return max(1, self.cluster_cpus())

    def start(self, workers: int | None = None) -> Backend:
        n = workers or self.config.workers or self.default_workers()
        cpus = self.cluster_cpus()
        if n > cpus:
            raise BackendError(
                f"workers={n} but the Ray cluster has {cpus} CPUs (one per worker); "
                f"use --workers {cpus} or fewer"
            )
        return super().start(n)

    def _new_handle(self, index: int) -> WorkerHandle:
        ray = _ray()
        actor = self._actor_cls.remote()
        try:
            pid = ray.get(actor.pid.remote(), timeout=CONNECT_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            raise BackendError(
                f"Ray could not start a worker actor in {CONNECT_TIMEOUT_S:.0f} s: every CPU of "
                "the cluster is taken (by another pool of workers?); use fewer --workers"
            ) from None
        if not self._socket:
            return _RayCallHandle(actor, pid)
        if self._listener is None:
            self._listener = Listener(("0.0.0.0", 0), authkey=self._authkey)
            path = os.path.join(tempfile.gettempdir(), f"domrand-{secrets.token_hex(8)}.sock")
            if hasattr(socket, "AF_UNIX") and os.name != "nt":
                with contextlib.suppress(OSError):  # (e.g. a path too long): TCP only
                    self._local = Listener(path, family="AF_UNIX", authkey=self._authkey)
        port = self._listener.address[1]
        host = ray.util.get_node_ip_address()
        token = secrets.token_hex(8)
        local = "" if self._local is None else str(self._local.address)
        serving = actor.serve.remote((host, port), local, self._authkey, token)
        return _RaySocketHandle(actor, pid, self._accept(token, serving), serving)

    def _accept(self, token: str, serving: Any) -> Any:
        """The connection the actor behind ``serving`` opens back to us."""
        ray = _ray()
        if self._listener is None:
            raise BackendError("the Ray backend's driver listener is not open (backend closed?)")
        listeners = {
            lst._listener._socket: lst  # type: ignore[attr-defined]
            for lst in (self._listener, self._local)
            if lst is not None
        }
        while True:
            ready, _, _ = select.select(list(listeners), [], [], CONNECT_TIMEOUT_S)
            if not ready:
                done, _ = ray.wait([serving], timeout=0)
                detail = ""
                if done:
                    try:
                        ray.get(serving)
                    except Exception as e:
                        detail = f": {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                raise BackendError(
                    f"a ray worker did not connect back to the driver in {CONNECT_TIMEOUT_S:.0f}"
                    f" s{detail} (a firewall between nodes? set DOMRAND_RAY_CHANNEL=ray)"
                )
            listener = listeners[ready[0]]
            conn = listener.accept()
            if listener is self._listener:
                _no_delay(conn)
            if conn.recv() == token:
                return conn
            conn.close()  # a connection from a worker we stopped waiting for

    def close(self) -> None:
        super().close()
        for listener in (self._listener, self._local):
            if listener is not None:
                listener.close()  # (the Unix socket's file is removed with it)
        self._listener = self._local = None
        # A local Ray instance started here stays up until the process exits (Ray's atexit
        # hook stops it): guided DR opens and closes pools phase after phase, and restarting
        # Ray each time would cost seconds.
