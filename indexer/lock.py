"""The writer lock: one ingest run writes at a time; readers never take it.

An OS advisory lock (``fcntl.flock``) on ``$THUMBSEARCH_HOME/ingest.lock``: the
kernel releases it when the holding process exits or dies, so a crashed run
never leaves it stuck. The file also names the holder (pid, start time, what it
runs) so a second writer can say who is in the way.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.errors import WriterBusyError, disk_full

__all__ = ["LOCK_NAME", "holder", "writer_lock"]

LOCK_NAME = "ingest.lock"
_POLL = 0.2  # seconds between attempts while waiting


def holder(path: Path) -> dict[str, Any]:
    """What the lock file says about its holder (empty when unknown)."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def writer_lock(home: Path, what: str, *, wait: float = 0.0,
                sleep: Callable[[float], None] = time.sleep,
                monotonic: Callable[[], float] = time.monotonic) -> Iterator[Path]:
    """Hold the writer lock for the block; wait up to ``wait`` seconds, then WriterBusyError."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the database
    path = home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if monotonic() >= deadline:
                    info = holder(path)
                    who = (f"pid {info.get('pid', '?')}, started {info.get('started', '?')}"
                           + (f", {info['what']}" if info.get("what") else ""))
                    waited = f" after waiting {wait:g}s" if wait > 0 else ""
                    raise WriterBusyError(
                        f"another ingest run ({who}) holds the lock {path}{waited}; "
                        "try again later or pass --wait SECONDS") from None
                sleep(min(_POLL, max(0.0, deadline - monotonic())) or _POLL)
        record = {"pid": os.getpid(), "what": what,
                  "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except OSError as exc:
            full = disk_full(exc, "writing the lock file", path)
            if full is None:
                raise
            raise full from exc
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the lock itself goes with the descriptor
    finally:
        os.close(fd)
