"""A settable clock for the store, the quota ledger and the refresh rules."""

from __future__ import annotations

from datetime import datetime


class Clock:
    """A settable UTC clock: call it for the time, assign ``now`` to move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
