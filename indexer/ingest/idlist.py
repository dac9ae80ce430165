"""Ingest a list of YouTube video ids: thumbnails by their known URL, then videos.list details.

Thumbnails cost no API quota: each id's ``mqdefault`` thumbnail is downloaded from
the thumbnail host and goes through the same pipeline as a search ingest, 50 ids a
group. Ids already embedded, or recorded as gone, are neither downloaded nor
embedded again, so a run that was killed or stopped is simply run again. Details
come from videos.list, 50 ids a call (1 unit), within the day's quota: stored
videos still without details (left by earlier runs first) are enriched while the
thumbnails stream in; a quota stop leaves the rest to the next run and downloads
go on. A thumbnail that answers 404, or an id videos.list leaves out, is recorded
as gone with its reason.

The thumbnails go through a ``ThumbnailStage``: ``PipelineStage`` runs them in this
process; ``indexer.ingest.ray_backfill`` runs them on a Ray cluster. Choosing the ids, the
gone records and the details are the same either way.

Several workers can run the same (or an overlapping) list at once, on one host or
many: each group's ids are claimed (``indexer.ingest.claims``) before they are downloaded,
ids another worker holds are left to it, and once its own groups are stored a worker
waits for those: ids the other worker stored or found gone are done, ids it gave up
are tried here, and ids whose claim expired (the worker was killed) are taken over.
So every id is downloaded and embedded by one worker, and each worker returns only
when the whole list is stored, gone or failed. The pipeline stage claims a group as it
takes it in; a Ray stage takes, and so claims, its whole share at the start.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from indexer.errors import InputError, QuotaExceededError, ThumbnailMissingError
from indexer.ingest.claims import video_key
from indexer.ingest.enrich import enrich_videos, unenriched_video_ids
from indexer.ingest.pipeline import WorkItem
from indexer.ingest.run import IngestRun, ingest_run
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Progress
from indexer.records import Failure, StoredVideo, VideoMeta
from indexer.service import Service
from indexer.youtube.client import MAX_IDS_PER_CALL
from indexer.youtube.gone import GONE_FROM_API, gone_reasons, record_gone

if TYPE_CHECKING:
    from indexer.images.fetch import ImageFetcher

__all__ = [
    "DETAILS_LABEL",
    "IdListJob",
    "IdListSummary",
    "PipelineStage",
    "ThumbnailStage",
    "add_video_ids",
]

DETAILS_LABEL = "details (videos.list)"
GROUP = MAX_IDS_PER_CALL  # ids submitted to the pipeline at a time


@dataclass
class IdListSummary:
    """What an id-list run did; ``run`` holds the counts every ingest run records."""

    ids: int  # distinct video ids asked for
    run: IngestSummary = field(default_factory=IngestSummary)
    already_gone: int = 0  # ids recorded as gone by an earlier run: skipped
    gone: list[Failure] = field(default_factory=list)  # found gone by this run, with why
    unenriched: int = 0  # stored YouTube videos still waiting for their details

    @property
    def stopped(self) -> str | None:
        """The quota message when the day's quota stopped the enrichment."""
        return self.run.stopped

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``add-ids --json``."""
        run = self.run
        return {
            "ids": self.ids,
            "new": run.new,
            "known": run.known,
            "already_gone": self.already_gone,
            "gone": [{"video_id": g.video_id, "reason": g.reason} for g in self.gone],
            "failed": [{"video_id": f.video_id, "reason": f.reason} for f in run.failed],
            "enriched": run.enriched,
            "unenriched": self.unenriched,
            "api_calls": {"search": run.search_calls, "videos": run.videos_calls},
            "skipped": dict(run.skipped),
        }


class _NotingMissing:
    """An ImageFetcher that notes the URLs that answered 404 (their videos are gone)."""

    def __init__(self, inner: ImageFetcher) -> None:
        self.inner = inner
        self.missing: dict[str, str] = {}  # url -> the error's message
        self._lock = threading.Lock()

    def fetch(self, url: str) -> bytes:
        """The inner fetcher's answer; a 404 is noted, then raised as before."""
        try:
            return self.inner.fetch(url)
        except ThumbnailMissingError as exc:
            with self._lock:
                self.missing[url] = str(exc)
            raise


def _meta(video_id: str, url: str, stored: StoredVideo | None) -> VideoMeta:
    # A row stored without this model's vector keeps its metadata.
    if stored is None:
        return VideoMeta(video_id=video_id, source="youtube", thumbnail_url=url)
    return VideoMeta(video_id=video_id, source=stored.source, title=stored.title,
                     description=stored.description, channel_id=stored.channel_id,
                     channel_title=stored.channel_title, published_at=stored.published_at,
                     thumbnail_url=stored.thumbnail_url or url)


class ThumbnailStage(Protocol):
    """Downloads, embeds and stores an id list's thumbnails: in this process, or elsewhere."""

    def steps(self, items: int) -> int:
        """How many progress steps ``store`` reports for this many items."""
        ...

    def store(self, job: IdListJob, groups: Iterator[list[WorkItem]]) -> None:
        """Store each item's thumbnail and vector; report each step with ``job.stored``.

        ``groups`` claims each group of up to 50 items as it is taken from it.
        """
        ...


class PipelineStage:
    """The thumbnails in this process: groups of 50 ids through the run's pipeline."""

    def steps(self, items: int) -> int:
        """One step a group."""
        return -(-items // GROUP)

    def store(self, job: IdListJob, groups: Iterator[list[WorkItem]]) -> None:
        """Queue the groups; each is reported once all of its items are stored or failed."""
        for group in groups:  # the next group is claimed once the pipeline takes this one
            job.run.submit(group, functools.partial(self._stored, job, group))
        job.run.drain()

    @staticmethod
    def _stored(job: IdListJob, group: list[WorkItem], stored: list[str]) -> None:
        done = set(stored)
        missing = {item.meta.video_id: job.missing[item.url] for item in group
                   if item.meta.video_id not in done and item.url in job.missing}
        job.stored(stored, missing, failed=len(group) - len(done) - len(missing))
        job.release(group)


class IdListJob:
    """One run over an id list: what to skip, what is gone, and details in calls of 50 ids.

    The thumbnails go through a ThumbnailStage, which reports each step with ``stored``;
    details are asked for as whole batches of 50 stored ids build up.
    """

    def __init__(self, run: IngestRun, fetcher: _NotingMissing, result: IdListSummary,
                 details: bool, progress: Progress, label: str) -> None:
        self.run = run
        self.service = run.service
        self.missing = fetcher.missing  # thumbnail URL -> why it answered 404
        self.result = result
        self.details = details
        self.progress = progress
        self.label = label
        self.to_enrich: list[str] = []
        self.asked: set[str] = set()  # ids whose details were asked for in this run
        self.stop: QuotaExceededError | None = None

    def enrich(self, full_batches_only: bool = False) -> None:
        """Ask videos.list about the waiting ids, 50 a call, until the quota ends."""
        if not self.details or self.stop is not None:
            return
        count = len(self.to_enrich)
        if full_batches_only:
            count -= count % MAX_IDS_PER_CALL
        while count > 0 and self.stop is None:
            take = min(count, MAX_IDS_PER_CALL)
            batch, self.to_enrich = self.to_enrich[:take], self.to_enrich[take:]
            count -= take
            self.asked.update(batch)
            gone_before = len(self.run.summary.gone)
            try:
                enrich_videos(self.service, self.run.summary, batch)
            except QuotaExceededError as exc:
                self.stop = exc  # downloads go on; the next run enriches the rest
                self.progress.finished(DETAILS_LABEL, "stopped by quota")
                return
            gone = len(self.run.summary.gone) - gone_before
            self.progress.advanced(DETAILS_LABEL, f"{len(batch) - gone} enriched, {gone} gone")

    def stored(self, stored: list[str], missing: Mapping[str, str], failed: int) -> None:
        """One step of the stage is through: note what is gone and enrich whole batches."""
        if missing:
            record_gone(self.service.store, missing)  # a rerun does not fetch them again
            self.result.gone.extend(Failure(v, why) for v, why in missing.items())
            self.run.summary.gone.extend(missing)
        self.progress.advanced(self.label, f"{len(stored)} new, {len(missing)} gone, "
                                           f"{failed} failed")
        self.to_enrich.extend(stored)
        self.enrich(full_batches_only=True)

    def leftovers(self) -> None:
        """Enrich stored videos still without details, until none is left or the quota ends."""
        while self.details and self.stop is None:
            waiting = [v for v in unenriched_video_ids(self.service.store, linked_only=False)
                       if v not in self.asked]
            if not waiting:
                return
            self.to_enrich.extend(waiting)
            self.enrich()

    def settled(self, ids: list[str]) -> list[str]:
        """The ids still to do: those embedded for the model or recorded as gone (by now,
        perhaps by another worker) are counted as known or gone before."""
        store, model = self.service.store, self.service.spec.model_id
        known = store.embedded_ids(ids, model)
        gone = gone_reasons(store, [v for v in ids if v not in known])
        self.run.summary.known += len(known)
        self.result.already_gone += len(gone)
        return [v for v in ids if v not in known and v not in gone]

    def _key(self, video_id: str) -> str:
        return video_key(self.service.spec.model_id, video_id)

    def claimed_groups(self, ids: list[str], held: list[str]) -> Iterator[list[WorkItem]]:
        """Claim ``ids`` a group at a time and yield, as work items, the claimed ones still
        to do; ids another worker holds are appended to ``held``."""
        claims, service = self.run.claims, self.service
        for start in range(0, len(ids), GROUP):
            group = ids[start:start + GROUP]
            keys = {v: self._key(v) for v in group}
            got = claims.claim(keys.values())
            mine = [v for v in group if keys[v] in got]
            held.extend(v for v in group if keys[v] not in got)
            todo = self.settled(mine)  # what another worker finished before letting go
            claims.release(keys[v] for v in mine if v not in todo)
            if not todo:  # the group's step: nothing of it goes to the stage
                self.progress.advanced(self.label, f"{len(group) - len(mine)} held by another "
                                                   "worker" if len(mine) < len(group) else "done")
                continue
            rows = service.store.get_videos(todo)
            items = []
            for video_id in todo:
                url = service.settings.thumbnail_url(video_id)
                items.append(WorkItem(meta=_meta(video_id, url, rows.get(video_id)), url=url))
            yield items

    def release(self, items: Sequence[WorkItem]) -> None:
        """The items are stored or given up: their claims go."""
        self.run.claims.release(self._key(item.meta.video_id) for item in items)

    def others_work(self, waiting: list[str], stage: ThumbnailStage) -> None:
        """Wait for the ids other workers held: done there, or given up or expired (taken
        over here)."""
        claims = self.run.claims
        answered: set[str] = set()  # claimed here: stored, gone or failed by this run
        while True:
            waiting = self.settled([v for v in waiting if v not in answered])
            if not waiting:
                return
            expired = claims.others([self._key(v) for v in waiting])
            free = [v for v in waiting if expired.get(self._key(v), True)]
            if not free:
                time.sleep(claims.poll_interval)
                continue
            still_held: list[str] = []
            stage.store(self, self.claimed_groups(free, still_held))
            answered.update(v for v in free if v not in still_held)

    def ingest(self, ids: list[str], stage: ThumbnailStage) -> None:
        """Download, embed and store the ids not stored yet, enriching along the way."""
        todo = self.settled(ids)
        if self.details:
            self.to_enrich = unenriched_video_ids(self.service.store, linked_only=False)
        waiting = len(self.to_enrich) + len(todo)
        self.progress.started([(self.label, stage.steps(len(todo)))] + (
            [(DETAILS_LABEL, -(-waiting // MAX_IDS_PER_CALL))] if self.details else []))
        # What earlier runs left is enriched first, as the stage stores the new ones.
        held: list[str] = []
        stage.store(self, self.claimed_groups(todo, held))
        self.others_work(held, stage)
        self.progress.finished(self.label, "done")
        self.enrich()
        self.leftovers()
        if self.details and self.stop is None:
            self.progress.finished(DETAILS_LABEL, "done")


def add_video_ids(service: Service, video_ids: Sequence[str], *, details: bool = True,
                  wait: float = 0.0, progress: Progress | None = None,
                  label: str = "video ids", stage: ThumbnailStage | None = None) -> IdListSummary:
    """Ingest the thumbnails of ``video_ids`` and give stored videos their details.

    See the module docstring. Without ``details`` no API call is made (and no API key
    is needed). A quota stop ends the run cleanly: every thumbnail is still stored and
    ``stopped`` says when the quota resets. ``label`` names the ids in progress reports.
    ``stage`` stores the thumbnails (default: this process's pipeline, PipelineStage).
    """
    ids = list(dict.fromkeys(video_ids))
    if not ids:
        raise InputError("no video ids to add")
    progress = progress or NullProgress()
    youtube = service.youtube if details else None  # a missing key fails before any write
    start = dict(youtube.calls) if youtube is not None else {}
    skipped_before = dict(youtube.skipped) if youtube is not None else {}
    fetcher = _NotingMissing(service.fetcher)
    result = IdListSummary(ids=len(ids))
    with ingest_run(service, "ids", wait=wait, fetcher=fetcher) as run:
        result.run = run.summary
        job = IdListJob(run, fetcher, result, details, progress, label)
        try:
            job.ingest(ids, stage or PipelineStage())
        finally:
            noted = {g.video_id for g in result.gone}
            run.summary.failed = [f for f in run.summary.failed if f.video_id not in noted]
            result.gone.extend(Failure(v, GONE_FROM_API) for v in run.summary.gone
                               if v not in noted)
            if youtube is not None:
                run.summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
                run.summary.count_skipped(skipped_before, youtube.skipped)
        result.unenriched = len(unenriched_video_ids(service.store, None, linked_only=False))
        if job.stop is not None:
            raise job.stop
    return result
