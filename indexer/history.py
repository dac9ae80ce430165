"""Run history: every ingest, schedule batch and refresh, as recorded in ingest_runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from indexer.schema import ingest_runs
from indexer.store import Store

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
    status: str  # running, done, quota, failed
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
                "gone": s.get("gone", 0), "pruned": s.get("pruned", 0)}


def list_runs(store: Store, limit: int = 20) -> list[RunRecord]:
    """The latest ``limit`` runs, oldest first (empty before the first write)."""
    if not store.exists():
        return []
    rows = store.transact("reading runs", lambda conn: list(conn.execute(
        select(ingest_runs).order_by(ingest_runs.c.id.desc()).limit(limit))))
    return [RunRecord(id=int(r.id), kind=r.kind, started_at=_utc(r.started_at) or r.started_at,
                      finished_at=_utc(r.finished_at), status=r.status,
                      summary=dict(r.summary or {})) for r in reversed(rows)]
