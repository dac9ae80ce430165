"""Videos recorded as gone: the thumbnail host answered 404, or videos.list left the id out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from indexer.store.metadata import Store, in_chunks
from indexer.store.reads import as_utc
from indexer.store.schema import gone_videos

__all__ = ["GONE_FROM_API", "forget_gone", "gone_reasons", "mark_missing", "missing_marks",
           "record_gone"]

GONE_FROM_API = "videos.list does not return it (deleted, private or never existed)"


def record_gone(store: Store, reasons: Mapping[str, str]) -> None:
    """Record each video id with why it is gone (a newer reason replaces an older one).

    A prune mark already there is kept: more evidence must not restart its day.
    """
    if not reasons:
        return
    ids = list(reasons)

    def write(conn: Any) -> None:
        now = store.now()
        for chunk in in_chunks(ids):
            marks = _marks(conn, chunk)
            conn.execute(delete(gone_videos).where(gone_videos.c.video_id.in_(chunk)))
            conn.execute(insert(gone_videos), [
                {"video_id": v, "reason": reasons[v], "noted_at": now,
                 "missing_since": marks.get(v)} for v in chunk])

    store.transact("recording gone videos", write)


def mark_missing(store: Store, video_ids: Iterable[str]) -> list[str]:
    """Mark stored videos a refresh found missing; return the ids marked for the first time.

    An id already marked keeps its first mark; any other gone record of it gets one.

    A gone video that was stored keeps its row and vector (``refresh --prune`` deletes
    those); an id list skips gone ids instead of downloading their thumbnails again.
    Details fetched for an id later (the video is back) clear its record.

    A refresh that finds a stored video missing marks it (``missing_since``, the first time
    only); ``refresh --prune`` deletes it only when a refresh at least a day later finds it
    missing again. Clearing the record clears the mark.
    """
    ids = list(dict.fromkeys(video_ids))
    if not ids:
        return []

    def write(conn: Any) -> list[str]:
        now = store.now()
        fresh: list[str] = []
        for chunk in in_chunks(ids):
            known = {str(r.video_id): r.missing_since for r in conn.execute(
                select(gone_videos.c.video_id, gone_videos.c.missing_since)
                .where(gone_videos.c.video_id.in_(chunk)))}
            unmarked = [v for v in chunk if v in known and known[v] is None]
            new = [v for v in chunk if v not in known]
            if unmarked:  # recorded gone before (enrichment, a thumbnail 404): now marked
                conn.execute(update(gone_videos).where(gone_videos.c.video_id.in_(unmarked))
                             .values(reason=GONE_FROM_API, missing_since=now))
            if new:
                conn.execute(insert(gone_videos), [
                    {"video_id": v, "reason": GONE_FROM_API, "noted_at": now,
                     "missing_since": now} for v in new])
            fresh += [v for v in chunk if v not in known or known[v] is None]
        return fresh

    result: list[str] = store.transact("marking missing videos", write)
    return result


def missing_marks(store: Store, video_ids: Iterable[str]) -> dict[str, datetime]:
    """The prune marks among ``video_ids``: id -> when a refresh first found it missing."""
    ids = list(dict.fromkeys(video_ids))
    if not ids or not store.exists():
        return {}

    def read(conn: Any) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for chunk in in_chunks(ids):
            out.update(_marks(conn, chunk))
        return out

    result: dict[str, datetime] = store.transact("reading prune marks", read)
    return result


def _marks(conn: Any, chunk: Sequence[str]) -> dict[str, datetime]:
    rows = conn.execute(select(gone_videos.c.video_id, gone_videos.c.missing_since).where(
        gone_videos.c.video_id.in_(chunk), gone_videos.c.missing_since.is_not(None)))
    out: dict[str, datetime] = {}
    for r in rows:
        marked = as_utc(r.missing_since)
        if marked is not None:
            out[str(r.video_id)] = marked
    return out


def forget_gone(conn: Any, video_ids: Iterable[str]) -> None:
    """Drop the gone records of ``video_ids`` inside the caller's transaction."""
    ids = list(dict.fromkeys(video_ids))
    for chunk in in_chunks(ids):
        conn.execute(delete(gone_videos).where(gone_videos.c.video_id.in_(chunk)))


def gone_reasons(store: Store, video_ids: Iterable[str]) -> dict[str, str]:
    """The ids among ``video_ids`` recorded as gone, with their reasons."""
    ids = list(dict.fromkeys(video_ids))
    if not ids or not store.exists():
        return {}

    def read(conn: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in in_chunks(ids):
            rows = conn.execute(select(gone_videos.c.video_id, gone_videos.c.reason).where(
                gone_videos.c.video_id.in_(chunk)))
            out.update({str(r.video_id): str(r.reason) for r in rows})
        return out

    result: dict[str, str] = store.transact("reading gone videos", read)
    return result
