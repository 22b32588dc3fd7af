"""``ray``: one Ray actor per worker, on a local Ray instance or a cluster (``--address``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerDied, WorkerHandle, WorkerHost

__all__ = ["RayBackend"]


class _RayWorker:
    """The actor: a :class:`WorkerHost` in a Ray worker process."""

    def __init__(self) -> None:
        self.host = WorkerHost()

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self.host.run(fn, args)

    def pid(self) -> int:
        return self.host.pid()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError(
            "the ray backend needs Ray: pip install 'domrand[ray]' (or pip install ray)"
        ) from None
    return ray


class _RayHandle(WorkerHandle):
    def __init__(self, actor_cls: Any) -> None:
        ray = _ray()
        self.actor = actor_cls.remote()
        self._ref: Any = None
        self.pid = ray.get(self.actor.pid.remote())

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


class RayBackend(Backend):
    """Ray actors (1 CPU each). Connects to ``address`` or starts a local Ray instance."""

    kind = "ray"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ray = _ray()
        self._started_ray = False
        if not ray.is_initialized():
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
            self._started_ray = True
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)

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
        return _RayHandle(self._actor_cls)

    def close(self) -> None:
        super().close()
        if self._started_ray:
            _ray().shutdown()
            self._started_ray = False
