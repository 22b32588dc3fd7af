"""Batches of independent evaluation chunks (guided DR's candidate evaluations) on a backend.

A guide cuts its evaluations into chunks whose composition does not depend on the worker count
(e.g. fixed-size groups of domains, each stepped in lockstep by one batched policy), so every
chunk computes the same numbers wherever it runs. Chunks go to the workers in rounds; a worker
that dies is restarted and its chunk re-run exactly (the chunk carries its own seeds), so nothing
is lost and, since a chunk's result is taken once, nothing is counted twice.

What every chunk of a batch needs (the policy: ~140 kB for an LSTM-64) is ``broadcast``: sent
once per worker per batch, not once per chunk.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerDied, WorkerHost

__all__ = ["MAX_ATTEMPTS", "run_chunks"]

MAX_ATTEMPTS = 3  #: runs of one chunk before giving up (a chunk that kills every worker)

_NOTHING = object()


def _put(host: WorkerHost, key: str, value: Any) -> None:
    host.resources[key] = value


def _drop(host: WorkerHost, key: str) -> None:
    host.resources.pop(key, None)


def _with_broadcast(host: WorkerHost, key: str, fn: Callable[..., Any], *args: Any) -> Any:
    return fn(host, host.resources[key], *args)


def run_chunks(
    backend: Backend,
    fn: Callable[..., Any],
    chunks: Sequence[Any],
    *shared: Any,
    broadcast: Any = _NOTHING,
) -> list[Any]:
    """``[fn(host, *shared, chunk) for chunk in chunks]``, run in parallel on the workers.

    With ``broadcast``, ``fn(host, broadcast, *shared, chunk)``, the value sent once per worker.

    Raises:
        BackendError: a chunk's worker died ``MAX_ATTEMPTS`` times in a row.
    """
    workers = min(backend.num_workers, len(chunks))
    key = f"broadcast-{uuid.uuid4().hex}"
    has_value = broadcast is not _NOTHING
    ready = [False] * workers  # the broadcast value is on worker w

    def put_all(ws: list[int]) -> None:
        for w in ws:
            backend.handles[w].send(_put, key, broadcast)
        for w in ws:
            backend.handles[w].recv()
            ready[w] = True

    results: list[Any] = [None] * len(chunks)
    todo = list(range(len(chunks)))
    attempts = [0] * len(chunks)
    try:
        while todo:
            batch = todo[:workers]
            todo = todo[len(batch) :]
            running: list[tuple[int, int]] = []
            retry: list[int] = []
            for w, j in enumerate(batch):
                attempts[j] += 1
                try:
                    if has_value and not ready[w]:
                        put_all([w])
                    if has_value:
                        backend.handles[w].send(_with_broadcast, key, fn, *shared, chunks[j])
                    else:
                        backend.handles[w].send(fn, *shared, chunks[j])
                    running.append((w, j))
                except WorkerDied:
                    backend.restart(w)
                    ready[w] = False
                    retry.append(j)
            error: BaseException | None = None
            for w, j in running:  # every reply is read, so no worker is left out of step
                try:
                    results[j] = backend.handles[w].recv()
                except WorkerDied:
                    backend.restart(w)
                    ready[w] = False
                    retry.append(j)
                except Exception as e:  # the chunk itself failed: raised after the others
                    error = error or e
            if error is not None:
                raise error
            for j in retry:
                if attempts[j] >= MAX_ATTEMPTS:
                    raise BackendError(
                        f"evaluation chunk {j} lost its worker {attempts[j]} times; giving up"
                    )
            todo = sorted(retry) + todo
    finally:
        for w in range(workers):
            if ready[w]:
                with contextlib.suppress(WorkerDied):  # a dead worker holds nothing
                    backend.handles[w].call(_drop, key)
    return results
