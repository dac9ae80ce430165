"""Dropping a file's pages from the page cache without root, and measuring how many remain."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np

__all__ = ["drop", "resident_share"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def drop(path: Path) -> None:
    """Write the file's dirty pages out, then ask the kernel to drop its cached pages."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_share(path: Path) -> float:
    """Share of the file's pages in the page cache (``mincore`` of a read-only mapping)."""
    size = path.stat().st_size
    if not size:
        return 0.0
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            flags = np.zeros(pages, np.uint8)
            if _libc.mincore(ctypes.c_void_p(address), size, flags.ctypes.data) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return float((flags & 1).mean())
        finally:
            _libc.munmap(ctypes.c_void_p(address), size)
    finally:
        os.close(fd)
