"""Run history: every ingest, schedule batch and refresh, as recorded in ingest_runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from indexer.process import ProcessIdentity, process_alive
from indexer.store.metadata import Store
from indexer.store.schema import ingest_runs

__all__ = ["RunRecord", "list_runs"]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class RunRecord:
    """One recorded run: when, how it ended, and its summary."""

    id: int
    kind: str  # search (ad-hoc queries), queries (a queries file), files, refresh
    started_at: datetime
    finished_at: datetime | None
    status: str  # running, done, quota, failed, interrupted (running, its process gone)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape of one entry of ``runs --json``."""
        s = self.summary
        return {"id": self.id, "kind": self.kind,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "status": self.status, "queries": s.get("queries", 0),
                "pages": s.get("pages", 0), "new": s.get("new", 0), "known": s.get("known", 0),
                "failed": len(s.get("failed", [])),
                "quota": s.get("quota") or {"search": s.get("api_calls", {}).get("search", 0),
                                            "units": s.get("api_calls", {}).get("videos", 0)},
                "per_query": s.get("per_query", {}), "stopped": s.get("stopped"),
                "enriched": s.get("enriched", 0), "refreshed": s.get("refreshed", 0),
                "gone": s.get("gone", 0), "pruned": s.get("pruned", 0),
                "watch_matches": s.get("watch_matches")}


def _flock_held(path: Path) -> bool | None:
    """Whether any process holds a flock on ``path`` (None where /proc/locks is absent).

    Read from /proc/locks rather than by trying the lock: a try could make a writer
    starting at that moment think the lock taken.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 12345 fe:00:2515199 0 EOF" (major:minor:inode in hex, hex,
    # decimal); "->" lines are waiters.
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    return any(len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where
               for fields in (line.split() for line in text.splitlines()))


def _writer_active(store: Store, home: Path | None) -> bool | None:
    """Whether some writer holds the writer lock (None when it cannot be told)."""
    if store.engine.dialect.name == "postgresql":
        from indexer.store.writer import advisory_holder

        try:
            with store.engine.connect() as conn:
                return bool(advisory_holder(conn))
        except SQLAlchemyError:
            return None
    if home is None:
        return None
    from indexer.store.writer import LOCK_NAME

    return _flock_held(home / LOCK_NAME)


class _Judge:
    """Tells whether a ``running`` row's process still holds it (asked once per listing)."""

    def __init__(self, store: Store, stale_after: float, home: Path | None) -> None:
        self.store = store
        self.stale_after = timedelta(seconds=stale_after)
        self.home = home
        self._writer: bool | None = None
        self._asked = False
        self._now: datetime | None = None

    def writer_active(self) -> bool | None:
        if not self._asked:
            self._writer, self._asked = _writer_active(self.store, self.home), True
        return self._writer

    def now(self) -> datetime:
        if self._now is None:
            self._now = _utc(self.store.now()) or datetime.now(UTC)
        return self._now

    def interrupted(self, row: Any) -> bool:
        host, pid = getattr(row, "host", None), getattr(row, "pid", None)
        if host is not None and pid is not None:
            alive = process_alive(ProcessIdentity(str(host), int(pid),
                                                  getattr(row, "process_start", None)))
            if alive is not None:
                return not alive
            beat = _utc(getattr(row, "heartbeat_at", None))
            if beat is not None:
                return self.now() - beat > self.stale_after
        return self.writer_active() is False


def list_runs(store: Store, limit: int = 20, *, stale_after: float = 120.0,
              home: Path | None = None) -> list[RunRecord]:
    """The latest ``limit`` runs, oldest first (empty before the first write).

    ``stale_after``: seconds after which another host's silent run is interrupted;
    ``home``: the data directory whose lock file tells whether a writer is running.

    A run recorded as ``running`` whose process no longer holds it is shown as
    ``interrupted`` (it was killed, or its host went down):

    - on this host, when its process (pid and process start, ``indexer.process``) is gone;
    - from another host, when its heartbeat is older than ``stale_after`` seconds (the
      claim lease: a live run renews it every third of that);
    - for runs recorded before either was kept, when no writer holds the writer lock
      (the lock file of this home on SQLite, the advisory lock on PostgreSQL).

    Nothing is written: a run judged interrupted that comes back still records its end.
    """
    if not store.exists():
        return []

    def read(conn: Any) -> list[Any]:
        # A database not yet upgraded by a writer lacks the newer columns.
        present = {c["name"] for c in inspect(conn).get_columns("ingest_runs")}
        columns = [c for c in ingest_runs.c if c.name in present]
        return list(conn.execute(select(*columns).order_by(ingest_runs.c.id.desc())
                                 .limit(limit)))

    rows = store.transact("reading runs", read)
    judge = _Judge(store, stale_after, home)
    return [RunRecord(id=int(r.id), kind=r.kind, started_at=_utc(r.started_at) or r.started_at,
                      finished_at=_utc(r.finished_at),
                      status="interrupted" if r.status == "running" and judge.interrupted(r)
                      else r.status,
                      summary=dict(r.summary or {})) for r in reversed(rows)]
