"""Keep a long-running process's resident memory flat as the index grows."""

from __future__ import annotations

import ctypes
import functools

__all__ = ["MMAP_THRESHOLD", "keep_large_blocks_mapped"]

MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's own starting value
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h


@functools.cache
def keep_large_blocks_mapped() -> bool:
    """Fix glibc's mmap threshold for this process (once); whether it took effect.

    glibc raises its mmap threshold each time a large block it had mmapped is freed (up to
    32 MB), so the next index copies, serialisation buffers and search results of that
    size come from the heap instead, whose freed middle is never given back: a worker or a
    query server that reopens a growing index every few minutes grows by a few such blocks
    each time. Fixing the threshold (which also stops its adjustment) keeps blocks of 128
    KiB and more in their own mappings, returned to the system when freed. Elsewhere than
    glibc this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter is linked with
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
