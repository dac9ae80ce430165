"""The watchlist's tables: watched items with their vectors, and the re-uploads found of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from indexer.errors import InputError, StoreError, WatchNotFoundError
from indexer.store.dberrors import store_error
from indexer.store.metadata import Store
from indexer.store.reads import as_utc
from indexer.store.schema import videos, watch_items, watch_matches
from indexer.store.serialise import insert_new

__all__ = ["SCORE_SLACK", "NewMatch", "WatchItem", "WatchMatch", "add_watch_item",
           "record_matches", "remove_watch_items", "vector_under", "watch_items_of",
           "watch_matches_of", "watch_state"]

# A pair scoring exactly its item's threshold still matches after float rounding.
SCORE_SLACK = 1e-6


@dataclass(frozen=True)
class WatchItem:
    """A watched thumbnail: its vector (L2-normalised, of ``model``) and its threshold."""

    id: int
    name: str
    kind: str  # "video" or "image"
    source: str  # the video id, image path or URL as given
    video_id: str | None  # the watched video (never reported as its own re-upload)
    model: str
    threshold: float
    created_at: datetime
    thumbnail_sha256: str | None = None
    vector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False,
                               compare=False)
    matches: int = 0  # re-uploads recorded so far
    latest: datetime | None = None  # when the latest was found


@dataclass(frozen=True)
class WatchMatch:
    """A re-upload found: the watched item, the video, its score, and who found it when."""

    id: int
    name: str  # the watched item's
    video_id: str
    score: float
    run_id: int | None  # None: found by ``watch add`` searching the corpus
    found_at: datetime
    title: str = ""
    channel_title: str = ""
    thumbnail_url: str = ""
    watched_video_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a match (``watch matches --json``, ``--on-match``)."""
        return {"watch": self.name, "video_id": self.video_id, "score": round(self.score, 6),
                "run_id": self.run_id, "found_at": self.found_at.isoformat(),
                "title": self.title, "channel_title": self.channel_title,
                "thumbnail_url": self.thumbnail_url, "watched_video_id": self.watched_video_id}


@dataclass(frozen=True)
class NewMatch:
    """A pair scoring at or above its item's threshold, to be recorded."""

    watch_id: int
    video_id: str
    score: float


def add_watch_item(store: Store, *, name: str, kind: str, source: str, video_id: str | None,
                   model: str, vector: np.ndarray, threshold: float,
                   thumbnail_sha256: str | None = None) -> WatchItem:
    """Store a watched item; InputError when its name is taken."""
    vector = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    now = store.now()
    values = {"name": name, "kind": kind, "source": source, "video_id": video_id,
              "model": model, "dim": int(vector.shape[0]), "vector": vector.tobytes(),
              "threshold": float(threshold), "thumbnail_sha256": thumbnail_sha256,
              "created_at": now}

    def write(conn: Any) -> int:
        return int(conn.execute(insert(watch_items).values(**values)).inserted_primary_key[0])

    try:
        item_id = store.transact("adding a watched item", write)
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise InputError(f"a watched item is already named {name!r}: pick another --name, "
                             f"or `thumbsearch watch remove {name}` first") from None
        raise
    return WatchItem(item_id, name, kind, source, video_id, model, float(threshold), now,
                     thumbnail_sha256, vector.astype(np.float32))


def _has_tables(store: Store) -> bool:
    """True when the database has the watchlist's tables (an older one is upgraded by the
    next command that writes)."""
    if not store.exists():
        return False
    try:
        return bool(inspect(store.engine).has_table("watch_matches"))
    except SQLAlchemyError as exc:
        raise store_error(exc, "reading the watchlist", store.engine) from exc


def _item(row: Any, matches: int = 0, latest: datetime | None = None) -> WatchItem:
    created = as_utc(row.created_at)
    assert created is not None
    return WatchItem(int(row.id), row.name, row.kind, row.source, row.video_id, row.model,
                     float(row.threshold), created, row.thumbnail_sha256,
                     np.frombuffer(row.vector, dtype="<f4").astype(np.float32),
                     matches, as_utc(latest))


def watch_items_of(store: Store, names: Sequence[str] | None = None) -> list[WatchItem]:
    """The watched items (those named ``names``), oldest first, with their match counts;
    WatchNotFoundError names any of ``names`` not watched."""
    if not _has_tables(store):
        if names:
            raise WatchNotFoundError(f"nothing is watched named {names[0]!r}")
        return []
    counts = (select(watch_matches.c.watch_id, func.count().label("n"),
                     func.max(watch_matches.c.found_at).label("latest"))
              .group_by(watch_matches.c.watch_id).subquery())
    query = (select(watch_items, counts.c.n, counts.c.latest)
             .outerjoin(counts, counts.c.watch_id == watch_items.c.id)
             .order_by(watch_items.c.id))
    if names:
        query = query.where(watch_items.c.name.in_(list(names)))

    def read(conn: Any) -> list[WatchItem]:
        return [_item(row, int(row.n or 0), row.latest) for row in conn.execute(query)]

    items: list[WatchItem] = store.transact("reading the watchlist", read)
    missing = sorted(set(names or ()) - {item.name for item in items})
    if missing:
        raise WatchNotFoundError(f"nothing is watched named {missing[0]!r}: see "
                                 "`thumbsearch watch list`")
    return items


def watch_state(store: Store) -> tuple[int, int]:
    """(count, highest id) of the watched items: it changes whenever they do."""
    def read(conn: Any) -> tuple[int, int]:
        row = conn.execute(select(func.count(), func.max(watch_items.c.id))).one()
        return int(row[0]), int(row[1] or 0)

    state: tuple[int, int] = store.transact("reading the watchlist", read)
    return state


def vector_under(store: Store, item: WatchItem, model: str) -> np.ndarray | None:
    """``item``'s vector under ``model``: its own, or for a watched video embedded with
    another model, the video's vector stored under this one (a corpus moved by
    ``reembed``); None when it has neither (runs of ``model`` cannot check it)."""
    if item.model == model:
        return item.vector
    if item.video_id is None:
        return None
    stored = store.get_vector(item.video_id, model)
    return stored[1] if stored is not None else None


def remove_watch_items(store: Store, names: Sequence[str]) -> int:
    """Stop watching ``names`` (with their recorded matches); all or nothing:
    WatchNotFoundError when one is not watched. How many matches went with them."""
    items = watch_items_of(store, names=names)
    ids = [item.id for item in items]

    def write(conn: Any) -> None:
        conn.execute(delete(watch_matches).where(watch_matches.c.watch_id.in_(ids)))
        conn.execute(delete(watch_items).where(watch_items.c.id.in_(ids)))

    store.transact("removing watched items", write)
    return sum(item.matches for item in items)


def record_matches(store: Store, found: Sequence[NewMatch], run_id: int | None) -> int:
    """Record each (item, video) pair once, whoever finds it first (other workers may record
    the same pair at the same moment); how many were new here."""
    if not found:
        return 0
    rows = {(m.watch_id, m.video_id): m for m in found}  # one row a pair

    def write(conn: Any) -> int:
        now = store.now()
        new = [{"watch_id": w, "video_id": v, "score": float(m.score), "run_id": run_id,
                "found_at": now} for (w, v), m in rows.items()]
        # Only the rows inserted here come back: a pair recorded before, or by another
        # worker at the same moment, is skipped (and counted by whoever recorded it).
        inserted = conn.execute(insert_new(conn, watch_matches, ["watch_id", "video_id"])
                                .returning(watch_matches.c.id), new).all()
        return len(inserted)

    added: int = store.transact("recording watch matches", write)
    return added


def watch_matches_of(store: Store, *, since: datetime | None = None,
                     names: Sequence[str] | None = None, run_id: int | None = None,
                     limit: int | None = None) -> list[WatchMatch]:
    """Recorded matches, newest first: found at or after ``since``, of the items ``names``,
    found by the run ``run_id``; at most ``limit``."""
    if not _has_tables(store):
        return []
    if names:
        watch_items_of(store, names=names)  # WatchNotFoundError for an unknown name
    query = (select(watch_matches, watch_items.c.name, watch_items.c.video_id.label("watched"),
                    videos.c.title, videos.c.channel_title, videos.c.thumbnail_url)
             .join(watch_items, watch_items.c.id == watch_matches.c.watch_id)
             .outerjoin(videos, videos.c.video_id == watch_matches.c.video_id)
             .order_by(watch_matches.c.found_at.desc(), watch_matches.c.id.desc()))
    conditions = []
    if since is not None:
        conditions.append(watch_matches.c.found_at >= since)
    if names:
        conditions.append(watch_items.c.name.in_(list(names)))
    if run_id is not None:
        conditions.append(watch_matches.c.run_id == run_id)
    if conditions:
        query = query.where(and_(*conditions))
    if limit is not None:
        query = query.limit(limit)

    def read(conn: Any) -> list[WatchMatch]:
        out = []
        for row in conn.execute(query):
            found = as_utc(row.found_at)
            assert found is not None
            out.append(WatchMatch(int(row.id), row.name, row.video_id, float(row.score),
                                  row.run_id, found, row.title or "", row.channel_title or "",
                                  row.thumbnail_url or "", row.watched))
        return out

    matches: list[WatchMatch] = store.transact("reading watch matches", read)
    return matches
