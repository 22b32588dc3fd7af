"""One torch thread for the guides' small networks (particles, discriminator, acting) and for
building a policy (its orthogonal init gives the same bits on any thread count only on one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["one_torch_thread"]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the process-wide setting.

    These networks' ops take microseconds: extra threads only add synchronization, which costs
    100x once another process holds a core (measured: a discriminator fit, 0.2 s vs 24 s).
    """
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)
