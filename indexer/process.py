"""Which process a run belongs to, and whether that process still lives."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessIdentity", "process_alive", "process_start", "this_process"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as a run records it: host, pid and its start (None where unknown).

    A run records its host name, pid and the process's start (the kernel's boot id and the
    process start time in clock ticks since boot, from ``/proc``): a pid can be reused by
    another process after the first one dies, and a host restarts with new pids, but a pid
    with the same start on the same boot is the same process.
    """

    host: str
    pid: int
    start: str | None


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """``BOOT_ID:TICKS`` of process ``pid`` (None when it is gone or there is no /proc)."""
    boot = _boot_id()
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; starttime is
    # field 22, the 20th after the last ")".
    fields = stat.rpartition(")")[2].split()
    if boot is None or len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie is dead
        return None
    return f"{boot}:{fields[19]}"


def this_process() -> ProcessIdentity:
    """The identity of the calling process."""
    pid = os.getpid()
    return ProcessIdentity(host=socket.gethostname()[:128], pid=pid, start=process_start(pid))


def process_alive(identity: ProcessIdentity) -> bool | None:
    """Whether the process lives: None when it is not on this host (nothing to tell)."""
    if identity.host != socket.gethostname()[:128]:
        return None
    boot = _boot_id()
    if identity.start is not None and boot is not None:
        if identity.start.partition(":")[0] != boot:
            return False  # this host has restarted since
        return process_start(identity.pid) == identity.start
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True
