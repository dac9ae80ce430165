"""Ingest a list of YouTube video ids: thumbnails by their known URL, then videos.list details."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from indexer.errors import InputError
from indexer.ingest.details import Details
from indexer.ingest.enrich import unenriched_video_ids
from indexer.ingest.loop import Loop
from indexer.ingest.pipeline import PipelineResult, WorkItem
from indexer.ingest.run import IngestRun, ingest_run
from indexer.ingest.source import Group, Stages
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.records import Failure, StoredVideo, VideoMeta
from indexer.service import Service
from indexer.youtube.client import MAX_IDS_PER_CALL
from indexer.youtube.gone import GONE_FROM_API, gone_reasons, record_gone

__all__ = [
    "DETAILS_LABEL",
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
    nothing_to_do: str | None = None  # why the run had nothing to do, when it had not

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
            "run_id": run.run_id,
            "watch_matches": run.matches,
            **({"nothing_to_do": self.nothing_to_do} if self.nothing_to_do else {}),
        }

    def totals(self) -> str:
        """What the run did, in one line: ``40 new, 80 already known, 0 gone, 0 failed``."""
        run = self.run
        line = (f"{run.new} new, {run.known} already known, {len(self.gone)} gone, "
                f"{len(run.failed)} failed, details {run.enriched}{run.matches_part()}")
        return line + ("; details stopped by the quota" if self.stopped else "")


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

    def stages(self, run: IngestRun) -> Stages[Group[int]]:
        """The stages for ``run``: each finished group (or batch) notes how many ids it
        held, and a thumbnail that answered 404 is in its result's ``missing``."""
        ...


class PipelineStage:
    """The thumbnails in this process: groups of 50 ids through the run's pipeline."""

    def stages(self, run: IngestRun) -> Stages[Group[int]]:
        """The run's pipeline."""
        return run


class _IdListSource:
    """An id list as a source: groups of 50 ids, what is gone recorded as each is stored.

    Each group's note is how many ids it held when it was read: its progress, once stored.
    """

    claims = True

    def __init__(self, run: IngestRun, result: IdListSummary, progress: Progress,
                 label: str) -> None:
        self.run = run
        self.service = run.service
        self.result = result
        self.progress = progress
        self.label = label
        self.todo: list[str] = []

    def prepare(self, ids: list[str]) -> int:
        """Keep the ids still to do (counting the others); return how many there are."""
        done = self.settle_ids(ids)
        self.todo = [v for v in ids if v not in done]
        return len(self.todo)

    def groups(self) -> Iterator[Group[int]]:
        """The ids still to do, 50 a group, as work items."""
        service = self.service
        for start in range(0, len(self.todo), GROUP):
            group = self.todo[start:start + GROUP]
            rows = service.store.get_videos(group)
            items = []
            for video_id in group:
                url = service.settings.thumbnail_url(video_id)
                items.append(WorkItem(meta=_meta(video_id, url, rows.get(video_id)), url=url))
            yield Group(items, len(items))

    def settle(self, group: Group[int], ids: list[str]) -> set[str]:
        """Ids embedded for the model or recorded as gone (by now, perhaps by another
        worker): counted as known or gone before."""
        return self.settle_ids(ids)

    def settle_ids(self, ids: list[str]) -> set[str]:
        """See ``settle``."""
        store, model = self.service.store, self.service.spec.model_id
        known = store.embedded_ids(ids, model)
        gone = gone_reasons(store, [v for v in ids if v not in known])
        self.run.summary.known += len(known)
        self.result.already_gone += len(gone)
        return known | set(gone)

    def stored(self, group: Group[int], result: PipelineResult) -> list[str]:
        """A group is through: note what is gone; the stored want details. Ids taken over
        from another worker were counted with the group they were read in."""
        through = 0 if group.handover else group.note
        if not group.items:  # nothing of the group went to the stages
            self.progress.advanced(self.label, through, f"{group.held} held by another worker"
                                   if group.held else "already done")
            return []
        stored, missing = result.stored, result.missing
        if missing:
            record_gone(self.service.store, missing)  # a rerun does not fetch them again
            self.result.gone.extend(Failure(v, why) for v, why in missing.items())
            self.run.summary.gone.extend(missing)
        failed = len(group.items) - len(set(stored)) - len(missing)
        self.progress.advanced(self.label, through, f"{len(stored)} new, {len(missing)} gone, "
                                                    f"{failed} failed")
        return stored


def add_video_ids(service: Service, video_ids: Sequence[str], *, details: bool = True,
                  wait: float = 0.0, progress: Progress | None = None,
                  label: str = "video ids", stage: ThumbnailStage | None = None) -> IdListSummary:
    """Ingest the thumbnails of ``video_ids`` and give stored videos their details.

    Without ``details`` no API call is made (and no API key
    is needed). A quota stop ends the run cleanly: every thumbnail is still stored and
    ``stopped`` says when the quota resets. ``label`` names the ids in progress reports.
    ``stage`` stores the thumbnails (default: this process's pipeline, PipelineStage).

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
    many: each group's ids are claimed (``indexer.ingest.loop``) before they are downloaded,
    ids another worker holds are left to it, and once its own groups are stored a worker
    waits for those: ids the other worker stored or found gone are done, ids it gave up
    are tried here, and ids whose claim expired (the worker was killed) are taken over.
    So every id is downloaded and embedded by one worker, and each worker returns only
    when the whole list is stored, gone or failed. The pipeline stage is given (and so the
    loop claims) a group at a time; a Ray stage is given its whole share before it starts.
    """
    ids = list(dict.fromkeys(video_ids))
    if not ids:
        raise InputError("no video ids to add")
    progress = progress or NullProgress()
    youtube = service.youtube if details else None  # a missing key fails before any write
    start = dict(youtube.calls) if youtube is not None else {}
    skipped_before = dict(youtube.skipped) if youtube is not None else {}
    result = IdListSummary(ids=len(ids))
    stage = stage or PipelineStage()
    with ingest_run(service, "ids", wait=wait) as run:
        result.run = run.summary
        source = _IdListSource(run, result, progress, label)
        todo = source.prepare(ids)
        waiting = (unenriched_video_ids(service.store, linked_only=False) if details else [])
        # What earlier runs left is enriched first, as the stages store the new ones.
        details_of = (Details(service, run.summary, waiting, ends_run=False, progress=progress,
                              label=DETAILS_LABEL, sweep=True) if details else None)
        progress.started(_plan(len(ids), todo, len(waiting) if details else None, label))
        loop = Loop(source, stage.stages(run), summary=run.summary, claims=run.claims,
                    model=service.spec.model_id, details=details_of)
        try:
            stop = loop.store()
            progress.finished(label, "done")
            stop = loop.finish(stop)
        finally:
            noted = {g.video_id for g in result.gone}
            run.summary.failed = [f for f in run.summary.failed if f.video_id not in noted]
            result.gone.extend(Failure(v, GONE_FROM_API) for v in run.summary.gone
                               if v not in noted)
            if youtube is not None:
                run.summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
                run.summary.count_skipped(skipped_before, youtube.skipped)
        result.unenriched = len(unenriched_video_ids(service.store, None, linked_only=False))
        if stop is None and not (todo or run.summary.enriched or run.summary.videos_calls):
            result.nothing_to_do = (f"all {plural(len(ids), 'id')} are already in the corpus"
                                    + (f" ({result.already_gone} recorded as gone)"
                                       if result.already_gone else ""))
        if stop is not None:
            raise stop
    progress.ended(f"nothing to do: {result.nothing_to_do}" if result.nothing_to_do
                   else result.totals())
    return result


def _plan(ids: int, todo: int, waiting: int | None, label: str) -> Plan:
    """``add-ids: 120 ids, 80 to download (40 stored or gone already); details for up to 80
    videos``; ``waiting`` is None without details."""
    text = f"{plural(ids, 'id')}, {todo} to download ({ids - todo} stored or gone already)"
    tasks = [Task(label, todo, "videos")]
    if waiting is not None:
        text += f"; details for up to {plural(waiting + todo, 'video')}"
        tasks.append(Task(DETAILS_LABEL, waiting + todo, "videos", overall=False))
    return Plan("add-ids", text, tuple(tasks), "videos")
