"""Videos recorded as gone: the thumbnail host answered 404, or videos.list left the id out.

A gone video that was stored keeps its row and vector (``refresh --prune`` deletes
those); an id list skips gone ids instead of downloading their thumbnails again.
Details fetched for an id later (the video is back) clear its record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select

from indexer.schema import gone_videos
from indexer.store import Store, in_chunks

__all__ = ["GONE_FROM_API", "forget_gone", "gone_reasons", "record_gone"]

GONE_FROM_API = "videos.list does not return it (deleted, private or never existed)"


def record_gone(store: Store, reasons: Mapping[str, str]) -> None:
    """Record each video id with why it is gone (a newer reason replaces an older one)."""
    if not reasons:
        return
    ids = list(reasons)

    def write(conn: Any) -> None:
        now = store.now()
        for chunk in in_chunks(ids):
            conn.execute(delete(gone_videos).where(gone_videos.c.video_id.in_(chunk)))
            conn.execute(insert(gone_videos), [
                {"video_id": v, "reason": reasons[v], "noted_at": now} for v in chunk])

    store.transact("recording gone videos", write)


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
