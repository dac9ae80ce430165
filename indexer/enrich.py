"""Video details from videos.list: enrichment of new videos, refresh and prune of old ones.

YouTube's terms require API data kept from public videos to be refreshed or
deleted within 30 days; ``refresh_videos`` re-fetches the oldest rows in batches
of 50 ids (1 unit a call, within the day's quota) and, with ``prune``, deletes
videos YouTube no longer has, together with their vectors. Ids that videos.list
leaves out when enriching are recorded as gone (``indexer.gone``) and not asked for again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, exists, select, update

from indexer.gone import GONE_FROM_API, forget_gone, record_gone
from indexer.progress import NullProgress, Progress
from indexer.runs import IngestRun, ingest_run
from indexer.schema import embeddings, gone_videos, query_videos, videos
from indexer.service import Service
from indexer.store import Store, in_chunks
from indexer.summary import IngestSummary
from indexer.youtube import MAX_IDS_PER_CALL, VideoDetails

__all__ = [
    "delete_videos",
    "enrich_videos",
    "refresh_videos",
    "stale_video_ids",
    "store_details",
    "unenriched_video_ids",
]


def store_details(store: Store, details: Sequence[VideoDetails]) -> int:
    """Write videos.list details onto stored rows (fetched_at becomes now); return rows updated."""
    if not details:
        return 0

    def write(conn: Any) -> int:
        now = store.now()
        count = 0
        for d in details:
            values: dict[str, Any] = {
                "duration": d.duration, "duration_seconds": d.duration_seconds,
                "view_count": d.view_count, "like_count": d.like_count,
                "comment_count": d.comment_count, "tags": list(d.tags),
                "category_id": d.category_id, "default_language": d.default_language,
                "details_fetched_at": now, "fetched_at": now}
            for key in ("title", "description", "channel_id", "channel_title"):
                if getattr(d.meta, key):
                    values[key] = getattr(d.meta, key)
            if d.meta.published_at is not None:
                values["published_at"] = d.meta.published_at
            count += conn.execute(update(videos).where(videos.c.video_id == d.video_id)
                                  .values(**values)).rowcount
        forget_gone(conn, [d.video_id for d in details])  # YouTube knows them again
        return count

    result: int = store.transact("storing video details", write)
    return result


def unenriched_video_ids(store: Store, limit: int | None = 5_000, *,
                         linked_only: bool = True) -> list[str]:
    """YouTube videos still without videos.list details (left by a quota stop), oldest first.

    Gone videos are left out; with ``linked_only``, so are videos no search found.
    """
    conditions = [videos.c.source == "youtube", videos.c.details_fetched_at.is_(None),
                  ~exists().where(gone_videos.c.video_id == videos.c.video_id)]
    if linked_only:
        conditions.append(exists().where(query_videos.c.video_id == videos.c.video_id))
    rows = store.transact("reading videos to enrich", lambda conn: list(conn.execute(
        select(videos.c.video_id).where(*conditions)
        .order_by(videos.c.created_at, videos.c.video_id).limit(limit))))
    return [r[0] for r in rows]


def enrich_videos(service: Service, summary: IngestSummary, video_ids: Sequence[str]) -> None:
    """Fetch and store details of ``video_ids``, 50 ids a videos.list call.

    Ids the answer leaves out are recorded as gone and listed in ``summary.gone``, unless
    it held items that answered no id asked for (then it is no evidence of that).
    """
    ids = list(dict.fromkeys(video_ids))
    for start in range(0, len(ids), MAX_IDS_PER_CALL):
        batch = ids[start:start + MAX_IDS_PER_CALL]
        found = service.youtube.video_details(batch)
        summary.enriched += store_details(service.store, found)
        present = {d.video_id for d in found}
        gone = [v for v in batch if v not in present]
        if gone and not getattr(found, "unattributed", 0):
            record_gone(service.store, dict.fromkeys(gone, GONE_FROM_API))
            summary.gone.extend(gone)


def stale_video_ids(store: Store, older_than: timedelta, limit: int = 1_000_000) -> list[str]:
    """YouTube videos whose API data was fetched before ``now - older_than``, oldest first."""
    cutoff = store.now() - older_than
    if not store.exists():
        return []
    rows = store.transact("reading old videos", lambda conn: list(conn.execute(
        select(videos.c.video_id).where(videos.c.source == "youtube",
                                        videos.c.fetched_at < cutoff)
        .order_by(videos.c.fetched_at, videos.c.video_id).limit(limit))))
    return [r[0] for r in rows]


def delete_videos(store: Store, video_ids: Sequence[str], model: str) -> np.ndarray:
    """Delete videos with their links and vectors; return the ``model`` row ids removed (int64)."""
    ids = list(dict.fromkeys(video_ids))

    def write(conn: Any) -> list[int]:
        rows: list[int] = []
        for chunk in in_chunks(ids):
            rows += [int(r[0]) for r in conn.execute(select(embeddings.c.id).where(
                embeddings.c.video_id.in_(chunk), embeddings.c.model == model))]
            conn.execute(delete(embeddings).where(embeddings.c.video_id.in_(chunk)))
            conn.execute(delete(query_videos).where(query_videos.c.video_id.in_(chunk)))
            conn.execute(delete(videos).where(videos.c.video_id.in_(chunk)))
        return rows

    removed: list[int] = store.transact("deleting videos", write) if ids else []
    return np.asarray(removed, dtype=np.int64)


def _prune(run: IngestRun, gone: Sequence[str]) -> None:
    service = run.service
    if run.index is None:
        run.index = service.index()
    rows = delete_videos(service.store, gone, service.spec.model_id)
    run.index.remove(rows)  # saved when the run ends
    run.summary.pruned += len(gone)


def refresh_videos(service: Service, older_than: timedelta = timedelta(days=30), *,
                   prune: bool = False, wait: float = 0.0,
                   progress: Progress | None = None) -> IngestSummary:
    """Re-fetch the metadata of videos older than ``older_than``; prune gone ones if asked.

    Stops cleanly at the day's quota (``summary.stopped``); the next refresh picks up
    the rows still old. Without ``prune``, gone videos are only listed.
    """
    progress = progress or NullProgress()
    youtube = service.youtube  # a missing key fails before anything is written
    # Exclusive: pruning removes vectors, which other writers' index saves would not see.
    with ingest_run(service, "refresh", wait=wait, exclusive=True) as run:
        summary = run.summary
        start = dict(youtube.calls)
        label = f"refresh (older than {older_than})"
        try:
            stale = stale_video_ids(service.store, older_than)
            batches = [stale[i:i + MAX_IDS_PER_CALL]
                       for i in range(0, len(stale), MAX_IDS_PER_CALL)]
            progress.started([(label, len(batches))])
            for batch in batches:
                found = youtube.video_details(batch)
                summary.refreshed += store_details(service.store, found)
                present = {d.video_id for d in found}
                gone = [v for v in batch if v not in present]
                summary.gone.extend(gone)
                if prune and gone:
                    _prune(run, gone)
                progress.advanced(label, f"{len(found)} refreshed, {len(gone)} gone")
            progress.finished(label, "done")
        finally:
            summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
    return summary
