"""Batches of independent evaluation chunks (guided DR's candidate evaluations) on a backend.

A guide cuts its evaluations into chunks whose composition does not depend on the worker count
(e.g. fixed-size groups of domains, each stepped in lockstep by one batched policy), so every
chunk computes the same numbers wherever it runs. Chunks go to the workers in rounds; a worker
that dies is restarted and its chunk re-run exactly (the chunk carries its own seeds), so nothing
is lost and, since a chunk's result is taken once, nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from domrand.backends.base import Backend, BackendError, WorkerDied

__all__ = ["MAX_ATTEMPTS", "run_chunks"]

MAX_ATTEMPTS = 3  #: runs of one chunk before giving up (a chunk that kills every worker)


def run_chunks(
    backend: Backend,
    fn: Callable[..., Any],
    chunks: Sequence[Any],
    *shared: Any,
) -> list[Any]:
    """``[fn(host, *shared, chunk) for chunk in chunks]``, run in parallel on the workers.

    Raises:
        BackendError: a chunk's worker died ``MAX_ATTEMPTS`` times in a row.
    """
    results: list[Any] = [None] * len(chunks)
    todo = list(range(len(chunks)))
    attempts = [0] * len(chunks)
    while todo:
        batch = todo[: backend.num_workers]
        todo = todo[len(batch) :]
        running: list[tuple[int, int]] = []
        retry: list[int] = []
        for w, j in enumerate(batch):
            attempts[j] += 1
            try:
                backend.handles[w].send(fn, *shared, chunks[j])
                running.append((w, j))
            except WorkerDied:
                backend.restart(w)
                retry.append(j)
        for w, j in running:
            try:
                results[j] = backend.handles[w].recv()
            except WorkerDied:
                backend.restart(w)
                retry.append(j)
        for j in retry:
            if attempts[j] >= MAX_ATTEMPTS:
                raise BackendError(
                    f"evaluation chunk {j} lost its worker {attempts[j]} times; giving up"
                )
        todo = sorted(retry) + todo
    return results
