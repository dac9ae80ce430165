"""Atomic file writes: a temporary file beside the target, then a rename over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["TEMPORARY_SUFFIX", "atomic_write", "sync_directory", "temporary_prefix"]

TEMPORARY_SUFFIX = ".tmp"


def temporary_prefix(name: str) -> str:
    """How the temporaries of an atomic write to a file called ``name`` begin."""
    return f".{name}."


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None], *,
                 durable: bool = True, mode: int | None = None) -> None:
    """Write ``data`` (bytes, or a function writing to the open file) to ``path`` atomically.

    ``durable``: the file is fsynced before the rename (a crash leaves old or new bytes,
    never an empty file under the name); ``mode``: its permissions (``mkstemp`` makes it
    private). Creates the parent directory; OSError (a full disk, an unusable path) is
    the caller's to translate.

    A reader sees the old file or the new one, never half of one; whatever fails, the
    temporary (``.<name>.<random>.tmp``) is deleted and the old file stays whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name),
                               suffix=TEMPORARY_SUFFIX)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (its entry is flushed, not just the file)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
