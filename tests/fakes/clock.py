"""Settable clocks: UTC time for the store, the quota ledger and the refresh rules, and a
monotonic clock that moves only when a retry loop sleeps on it."""

from __future__ import annotations

import threading
from datetime import datetime

__all__ = ["Clock", "VirtualTime"]


class Clock:
    """A settable UTC clock: call it for the time, assign ``now`` to move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class VirtualTime:
    """A monotonic clock and its ``sleep``: sleeping returns at once and moves the clock.

    Each thread has its own time (a download worker's deadline counts only its own
    pauses); every pause is kept in ``slept``, from all threads.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self.slept: list[float] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self) -> float:
        return self.start + float(getattr(self._local, "elapsed", 0.0))

    def sleep(self, seconds: float) -> None:
        """Pass ``seconds`` on this thread's clock without waiting."""
        assert seconds >= 0, seconds
        self._local.elapsed = getattr(self._local, "elapsed", 0.0) + seconds
        with self._lock:
            self.slept.append(seconds)
