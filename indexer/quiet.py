"""Keeping native libraries' stderr chatter (C++ logs written to fd 2) off the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["muted_stderr"]


@contextlib.contextmanager
def muted_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Python's and C++'s writes)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
