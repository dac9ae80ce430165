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
process; ``indexer.ray_backfill`` runs them on a Ray cluster. Choosing the ids, the
gone records and the details are the same either way.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from indexer.enrich import enrich_videos, unenriched_video_ids
from indexer.errors import InputError, QuotaExceededError, ThumbnailMissingError
from indexer.gone import GONE_FROM_API, gone_reasons, record_gone
from indexer.pipeline import WorkItem
from indexer.progress import NullProgress, Progress
from indexer.records import Failure, StoredVideo, VideoMeta
from indexer.runs import IngestRun, ingest_run
from indexer.service import Service
from indexer.summary import IngestSummary
from indexer.youtube import MAX_IDS_PER_CALL

if TYPE_CHECKING:
    from indexer.fetch import ImageFetcher

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

    def store(self, job: IdListJob, items: list[WorkItem]) -> None:
        """Store each item's thumbnail and vector; report each step with ``job.stored``."""
        ...


class PipelineStage:
    """The thumbnails in this process: groups of 50 ids through the run's pipeline."""

    def steps(self, items: int) -> int:
        """One step a group."""
        return -(-items // GROUP)

    def store(self, job: IdListJob, items: list[WorkItem]) -> None:
        """Queue the groups; each is reported once all of its items are stored or failed."""
        for start in range(0, len(items), GROUP):
            group = items[start:start + GROUP]
            job.run.submit(group, functools.partial(self._stored, job, group))
        job.run.drain()

    @staticmethod
    def _stored(job: IdListJob, group: list[WorkItem], stored: list[str]) -> None:
        done = set(stored)
        missing = {item.meta.video_id: job.missing[item.url] for item in group
                   if item.meta.video_id not in done and item.url in job.missing}
        job.stored(stored, missing, failed=len(group) - len(done) - len(missing))


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

    def todo(self, ids: list[str]) -> list[WorkItem]:
        """The ids neither embedded for the model nor recorded as gone, as work items."""
        service, summary = self.service, self.run.summary
        known = service.store.embedded_ids(ids, service.spec.model_id)
        summary.known = len(known)
        gone = gone_reasons(service.store, [v for v in ids if v not in known])
        self.result.already_gone = len(gone)
        todo = [v for v in ids if v not in known and v not in gone]
        rows = service.store.get_videos(todo)
        items = []
        for video_id in todo:
            url = service.settings.thumbnail_url(video_id)
            items.append(WorkItem(meta=_meta(video_id, url, rows.get(video_id)), url=url))
        return items

    def ingest(self, ids: list[str], stage: ThumbnailStage) -> None:
        """Download, embed and store the ids not stored yet, enriching along the way."""
        items = self.todo(ids)
        if self.details:
            self.to_enrich = unenriched_video_ids(self.service.store, linked_only=False)
        waiting = len(self.to_enrich) + len(items)
        self.progress.started([(self.label, stage.steps(len(items)))] + (
            [(DETAILS_LABEL, -(-waiting // MAX_IDS_PER_CALL))] if self.details else []))
        # What earlier runs left is enriched first, as the stage stores the new ones.
        stage.store(self, items)
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
        result.unenriched = len(unenriched_video_ids(service.store, None, linked_only=False))
        if job.stop is not None:
            raise job.stop
    return result
