"""Video details from videos.list: enrichment of new videos, refresh and prune of old ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, exists, select, update

from indexer.errors import VectorIndexError
from indexer.ingest.run import IngestRun, ingest_run
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.service import Service
from indexer.store.metadata import Store, in_chunks
from indexer.store.schema import embeddings, gone_videos, query_videos, videos
from indexer.youtube.client import MAX_IDS_PER_CALL, VideoDetails
from indexer.youtube.gone import (
    GONE_FROM_API,
    forget_gone,
    mark_missing,
    missing_marks,
    record_gone,
)

__all__ = [
    "PRUNE_AFTER",
    "delete_videos",
    "enrich_videos",
    "refresh_videos",
    "stale_video_ids",
    "store_details",
    "unenriched_video_ids",
]


PRUNE_AFTER = timedelta(days=1)  # a marked video goes only when missing again this much later


def store_details(store: Store, details: Sequence[VideoDetails]) -> int:
    """Write videos.list details onto stored rows (fetched_at becomes now); return rows updated."""
    if not details:
        return 0

    def write(conn: Any) -> int:
        now = store.now()
        # Rows setting the same columns share one statement, run for all of them at once
        # (building a statement a row cost more CPU than the update itself).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
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
            groups.setdefault(tuple(values), []).append(
                {"p_video_id": d.video_id, **{f"p_{k}": v for k, v in values.items()}})
        count = 0
        for columns, rows in groups.items():
            statement = update(videos).where(videos.c.video_id == bindparam("p_video_id")).values(
                {key: bindparam(f"p_{key}", type_=videos.c[key].type) for key in columns})
            if conn.dialect.supports_sane_multi_rowcount:
                count += conn.execute(statement, rows).rowcount
            else:  # a driver that cannot count an executemany's rows: one row at a time
                count += sum(conn.execute(statement, row).rowcount for row in rows)
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
    it held items that answered no id asked for, or left out every id of a batch of two
    or more (a suspect answer, counted in ``summary.suspect_batches``).
    """
    ids = list(dict.fromkeys(video_ids))
    for start in range(0, len(ids), MAX_IDS_PER_CALL):
        batch = ids[start:start + MAX_IDS_PER_CALL]
        found = service.youtube.video_details(batch)
        summary.enriched += store_details(service.store, found)
        present = {d.video_id for d in found}
        gone = [v for v in batch if v not in present]
        if len(batch) >= 2 and not present:
            summary.suspect_batches += 1  # an outage or a proxy, not every video gone at once
            continue
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


def _vector_rows(store: Store, video_ids: Sequence[str]) -> dict[str, tuple[int, list[int]]]:
    """Model -> (dimension, embedding row ids) of the vectors ``video_ids`` have."""
    def read(conn: Any) -> dict[str, tuple[int, list[int]]]:
        out: dict[str, tuple[int, list[int]]] = {}
        for chunk in in_chunks(list(video_ids)):
            for r in conn.execute(select(embeddings.c.model, embeddings.c.dim, embeddings.c.id)
                                  .where(embeddings.c.video_id.in_(chunk))):
                out.setdefault(str(r.model), (int(r.dim), []))[1].append(int(r.id))
        return out

    result: dict[str, tuple[int, list[int]]] = store.transact("reading vector rows", read)
    return result


def _prune(run: IngestRun, gone: Sequence[str]) -> None:
    from indexer.vectors.index import VectorIndex

    service = run.service
    model = service.spec.model_id
    if run.index is None:
        run.index = service.index()
    others = {m: v for m, v in _vector_rows(service.store, gone).items() if m != model}
    rows = delete_videos(service.store, gone, model)
    run.index.remove(rows)  # saved when the run ends
    run.summary.pruned += len(gone)
    # The vectors of other models go too: their snapshots on disk drop the rows now, or
    # `doctor` with that model would find ids without a row.
    for other, (dim, ids) in others.items():
        if not VectorIndex(service.settings.index_dir, other, dim).meta_path.exists():
            continue  # none built yet: it will be built from the database
        try:
            index = VectorIndex.open(service.settings.index_dir, other, dim, service.store)
            index.remove(np.asarray(ids, dtype=np.int64))
            index.save()
        except VectorIndexError:
            continue  # a damaged index of another model: `doctor` names it, a rebuild repairs it


def _control_video(store: Store, cutoff: datetime) -> str | None:
    """The YouTube video whose details were confirmed last and are not old, nor gone."""
    rows = store.transact("choosing a control video", lambda conn: list(conn.execute(
        select(videos.c.video_id).where(
            videos.c.source == "youtube", videos.c.details_fetched_at.is_not(None),
            videos.c.fetched_at >= cutoff,
            ~exists().where(gone_videos.c.video_id == videos.c.video_id))
        .order_by(videos.c.details_fetched_at.desc(), videos.c.video_id).limit(1))))
    return str(rows[0][0]) if rows else None


def _titles(store: Store, video_ids: Sequence[str]) -> dict[str, str]:
    """Video id -> stored title, in the order of ``video_ids``."""
    def read(conn: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in in_chunks(list(video_ids)):
            out.update({str(r.video_id): str(r.title) for r in conn.execute(
                select(videos.c.video_id, videos.c.title).where(videos.c.video_id.in_(chunk)))})
        return out

    found: dict[str, str] = store.transact("reading titles", read) if video_ids else {}
    return {v: found[v] for v in video_ids if v in found}


def _refresh_batch(run: IngestRun, asked: list[str], batch: set[str], *, prune: bool,
                   dry_run: bool) -> str:
    """Ask videos.list about ``asked`` (``batch`` plus perhaps the control) and act on the
    answer; return a progress note."""
    service, summary = run.service, run.summary
    store = service.store
    wanted = set(asked)  # an answer about other ids is not evidence about these
    answer = service.youtube.video_details(asked)
    found = [d for d in answer if d.video_id in wanted]
    present = {d.video_id for d in found}
    if len(asked) >= 2 and not present:
        summary.suspect_batches += 1
        return f"suspect answer: all {len(asked)} ids missing, nothing marked"
    if getattr(answer, "unattributed", 0):
        # An item skipped unread may be the answer for any asked id: none is proven missing.
        summary.suspect_batches += 1
        return "suspect answer: items that answer no id asked for, nothing marked"
    missing = [v for v in asked if v not in present]
    marks = missing_marks(store, asked)
    summary.unmarked += len(present & marks.keys())
    summary.gone.extend(missing)
    now = store.now()
    due = [v for v in missing if v in marks and now - marks[v] >= PRUNE_AFTER]
    summary.confirmed.update(_titles(store, due))
    if dry_run:
        summary.marked += sum(v not in marks for v in missing)
        return f"{len(present)} present, {len(missing)} missing, {len(due)} would go"
    summary.refreshed += store_details(store, [d for d in found if d.video_id in batch])
    store_details(store, [d for d in found if d.video_id not in batch])  # the control
    summary.marked += len(mark_missing(store, missing))
    if prune and due:
        _prune(run, due)
    return f"{len(present)} refreshed, {len(missing)} missing, {len(due) if prune else 0} pruned"


def _duration(age: timedelta) -> str:
    """``30d``, ``12h``, ``90m``: an age as the --older-than option writes it."""
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def refresh_videos(service: Service, older_than: timedelta = timedelta(days=30), *,
                   prune: bool = False, dry_run: bool = False, wait: float = 0.0,
                   progress: Progress | None = None) -> IngestSummary:
    """Re-fetch the metadata of videos older than ``older_than``; mark missing ones and,
    with ``prune``, delete those missing again a day after their mark.

    ``dry_run`` asks the same questions (and spends the same quota) but writes nothing:
    ``summary.confirmed`` lists what ``prune`` would delete. Stops cleanly at the day's
    quota (``summary.stopped``); the next refresh picks up the rows still old.

    YouTube's terms require API data kept from public videos to be refreshed or
    deleted within 30 days; ``refresh_videos`` re-fetches the oldest rows in batches
    of 50 ids (1 unit a call, within the day's quota). Ids that videos.list leaves out
    when enriching are recorded as gone (``indexer.youtube.gone``) and not asked for again.

    Nothing is deleted on one answer. A refresh that finds a stored video missing marks it
    (``indexer.youtube.gone.mark_missing``); with ``prune`` a refresh at least
    ``PRUNE_AFTER`` (a day) after the mark that finds it missing again deletes it with its
    vectors; details stored for it in between (it is back) clear the mark. An answer that
    leaves out every id of a batch of two or more is suspect (an outage, a quota glitch, a
    proxy answering for YouTube): nothing is refreshed, marked or deleted from it, and it is
    counted. So that a batch of marked videos alone is not suspect whenever they are really
    gone, each batch also asks for one control: the video whose details were confirmed last.
    """
    progress = progress or NullProgress()
    youtube = service.youtube  # a missing key fails before anything is written
    # Exclusive: pruning removes vectors, which other writers' index saves would not see.
    with ingest_run(service, "refresh", wait=wait, exclusive=True) as run:
        summary = run.summary
        start = dict(youtube.calls)
        label = f"refresh (older than {_duration(older_than)})"
        try:
            cutoff = service.store.now() - older_than
            stale = stale_video_ids(service.store, older_than)
            control = _control_video(service.store, cutoff) if stale else None
            size = MAX_IDS_PER_CALL - (control is not None)
            batches = [stale[i:i + size] for i in range(0, len(stale), size)]
            progress.started(Plan("refresh", f"{plural(len(stale), 'video')} with data older "
                                  f"than {_duration(older_than)}",
                                  (Task(label, len(stale), "videos"),), "videos"))
            for batch in batches:
                asked = batch + ([control] if control is not None else [])
                note = _refresh_batch(run, asked, set(batch), prune=prune, dry_run=dry_run)
                progress.advanced(label, len(batch), note)
            progress.finished(label, "done")
            if not stale:
                summary.nothing_to_do = (f"no stored video's data is older than "
                                         f"{_duration(older_than)}")
        finally:
            summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
    progress.ended(f"nothing to do: {summary.nothing_to_do}" if summary.nothing_to_do else
                   f"{summary.refreshed} refreshed, {len(summary.gone)} gone, "
                   f"{summary.pruned} pruned" + ("; stopped by the quota" if summary.stopped
                                                 else ""))
    return summary
