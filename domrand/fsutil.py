"""Atomic file writes: a crash leaves either the old or the new content, never a torn file.

The single implementation behind every spec, config, report, dataset shard and export domrand
writes (checkpoints go through ``torch.save`` into the same temp-file-and-rename pattern).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from domrand.errors import StorageError

__all__ = ["atomic_write_bytes", "atomic_write_text", "is_temporary", "remove_temporaries"]

#: the names :func:`atomic_write_bytes` gives its temporaries: ``.<name>.<random>.tmp``
_TEMPORARY = re.compile(r"^\..+\.[^.]+\.tmp$")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temporary file in the same folder and a rename.

    Parent folders are created. On any failure the temporary file is removed and the previous
    content of ``path`` (if any) is left untouched.

    Raises:
        StorageError: the write failed (disk full, no permission, ...): one line naming the file
            and the reason, with the operating system's ``errno``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _storage_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise _storage_error(path, e) from None
        raise
    # Make the rename itself durable (best effort: not every filesystem supports it).
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _storage_error(path: Path, e: OSError) -> StorageError:
    reason = e.strerror or str(e) or type(e).__name__
    return StorageError(
        f"cannot write {str(path)!r}: {reason}; its previous version (if any) is unchanged",
        e.errno,
    )


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_write_bytes`."""
    return bool(_TEMPORARY.match(Path(path).name))


def remove_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete the temporaries interrupted writes left in ``folder`` and below; their count.

    Only for a folder no other process is writing to (e.g. a run being resumed).
    """
    removed = 0
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file() and is_temporary(p):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))
