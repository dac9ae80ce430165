"""Checks where outside data enters: bounded file reads, numbers in range, input quoted short."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeGuard

from indexer.errors import InputFileError, UsageError

__all__ = [
    "QUOTE_LIMIT",
    "VIDEO_ID",
    "bounded_float",
    "bounded_int",
    "hash_regular_file",
    "is_video_id",
    "open_regular",
    "quote",
    "read_regular_file",
    "read_stream",
]

QUOTE_LIMIT = 80  # characters of user input an error line repeats
_CHUNK = 1 << 16


# \Z, not $: $ also matches before a trailing newline. Use with fullmatch (is_video_id).
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}\Z")


def is_video_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is exactly a YouTube video id: 11 characters of [A-Za-z0-9_-]."""
    return isinstance(value, str) and VIDEO_ID.fullmatch(value) is not None


def quote(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of user input cut to ``limit`` characters, saying how long the whole was."""
    value = str(text)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def _size_text(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


@contextmanager
def open_regular(path: Path, what: str) -> Iterator[BinaryIO]:
    """Open ``path`` for reading only when it is a regular file (no FIFO, device or socket).

    Opened non-blocking first so a FIFO with no writer cannot hang the check, then
    checked on the open descriptor, so the file cannot be swapped between check and read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputFileError(f"{what} {quote(path)} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"{what} {quote(path)} is a directory, not a file") from None
    except OSError as exc:
        raise InputFileError(f"cannot open {what} {quote(path)}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputFileError(f"{what} {quote(path)} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise InputFileError(f"{what} {quote(path)} is not a regular file "
                                 "(a pipe, device or socket); give a file")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def _too_large(what: str, path: object, limit: int, setting: str) -> InputFileError:
    return InputFileError(f"{what} {quote(path)} is larger than {_size_text(limit)}; "
                          f"raise {setting} to read it")


def read_stream(stream: BinaryIO, limit: int, what: str, setting: str,
                name: object = "-") -> bytes:
    """At most ``limit`` bytes of ``stream``; more is a one-line error, read no further."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(what, name, limit, setting)
    return data


def read_regular_file(path: Path, limit: int, what: str, setting: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``setting`` raises the limit)."""
    with open_regular(path, what) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise _too_large(what, path, limit, setting)
        return read_stream(handle, limit, what, setting, path)


def hash_regular_file(path: Path, limit: int, what: str, setting: str) -> tuple[str, int]:
    """SHA-256 hex digest and size of a regular file, streamed; stops at ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    with open_regular(path, what) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise _too_large(what, path, limit, setting)
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(what, path, limit, setting)
            digest.update(chunk)
    return digest.hexdigest(), size


def bounded_int(text: object, name: str, low: int, high: int) -> int:
    """A whole number in ``[low, high]`` parsed from ``text``; else UsageError naming ``name``."""
    raw = str(text).strip()
    # int() of a huge digit string is slow and may raise: refuse on length first.
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise UsageError(f"{name} must be a whole number from {low} to {high}, got {quote(raw)}")
    return value


def bounded_float(text: object, name: str, low: float, high: float) -> float:
    """A finite number in ``[low, high]`` parsed from ``text``; else UsageError naming ``name``."""
    raw = str(text).strip()
    try:
        value = float(raw) if len(raw) <= 40 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails both comparisons
        raise UsageError(f"{name} must be a number from {low:g} to {high:g}, got {quote(raw)}")
    return value
