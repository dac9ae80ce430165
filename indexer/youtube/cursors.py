"""Where each scheduled query stands: its open pass, the page token to resume from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from indexer.store.metadata import Store
from indexer.store.schema import query_cursors
from indexer.youtube.quota import pacific_day

__all__ = ["Cursor", "load_cursors", "save_cursor"]


def _as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass
class Cursor:
    """The state of one query (by its key) across runs.

    A pass reads a query's result list from the first page up to its ``pages`` limit
    or the last page. A quota stop leaves the pass open with the token of the next
    page, and the next run resumes there. A finished pass starts again on a later
    Pacific day (new results appear; nothing is read twice in one day).
    """

    key: str
    query_id: int
    params: dict[str, Any] = field(default_factory=dict)  # search options of the open pass
    page_token: str | None = None  # next page of the open pass
    pass_pages: int = 0
    pages_total: int = 0
    passes_done: int = 0
    pass_done_at: datetime | None = None
    last_fetched_at: datetime | None = None
    stored: bool = False

    @property
    def open(self) -> bool:
        """A pass is under way (it stopped before its last page)."""
        return self.page_token is not None

    def due(self, now: datetime) -> bool:
        """Whether the query has pages to read now: an open pass, or no pass done today."""
        return self.open or self.pass_done_at is None or (
            pacific_day(self.pass_done_at) < pacific_day(now))


def load_cursors(store: Store, keys: Sequence[tuple[str, int]]) -> dict[str, Cursor]:
    """Cursors of (key, query id) pairs; unknown keys get a fresh cursor (not yet saved)."""
    wanted = dict(keys)

    def read(conn: Any) -> dict[str, Cursor]:
        out: dict[str, Cursor] = {}
        rows = conn.execute(select(query_cursors).where(query_cursors.c.key.in_(list(wanted))))
        for r in rows.mappings():
            out[r["key"]] = Cursor(
                key=r["key"], query_id=int(r["query_id"]), params=dict(r["params"] or {}),
                page_token=r["page_token"], pass_pages=int(r["pass_pages"]),
                pages_total=int(r["pages_total"]), passes_done=int(r["passes_done"]),
                pass_done_at=_as_utc(r["pass_done_at"]),
                last_fetched_at=_as_utc(r["last_fetched_at"]), stored=True)
        return out

    found: dict[str, Cursor] = store.transact("reading query cursors", read) if wanted else {}
    return {key: found.get(key) or Cursor(key=key, query_id=qid) for key, qid in wanted.items()}


def save_cursor(store: Store, cursor: Cursor) -> None:
    """Insert or update one cursor."""
    values = {"query_id": cursor.query_id, "params": cursor.params,
              "page_token": cursor.page_token, "pass_pages": cursor.pass_pages,
              "pages_total": cursor.pages_total, "passes_done": cursor.passes_done,
              "pass_done_at": cursor.pass_done_at, "last_fetched_at": cursor.last_fetched_at,
              "updated_at": store.now()}

    def write(conn: Any) -> None:
        if cursor.stored:
            conn.execute(update(query_cursors).where(query_cursors.c.key == cursor.key)
                         .values(**values))
        else:
            conn.execute(insert(query_cursors).values(key=cursor.key, **values))

    store.transact("saving a query cursor", write)
    cursor.stored = True
