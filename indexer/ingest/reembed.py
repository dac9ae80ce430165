"""Re-embed the stored corpus with another model from the thumbnail cache (no network)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.errors import FetchError
from indexer.images.thumbcache import ThumbnailCache
from indexer.ingest.loop import Loop
from indexer.ingest.pipeline import Pipeline, PipelineResult, StageTimes, WorkItem
from indexer.ingest.run import run_heartbeat, save_and_record
from indexer.ingest.source import Group
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.records import Failure, VideoMeta
from indexer.service import Service
from indexer.store.writer import writer_lock

__all__ = ["ReembedSummary", "cache_loader", "reembed"]


@dataclass
class ReembedSummary:
    """What one re-embedding run did."""

    model: str
    embedded: int = 0
    already: int = 0
    failed: list[Failure] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    nothing_to_do: str | None = None  # why the run had nothing to do, when it had not

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``reembed --json`` (``nothing_to_do`` only when the
        run had nothing to do)."""
        out: dict[str, Any] = {
            "model": self.model, "embedded": self.embedded, "already": self.already,
            "failed": [{"video_id": f.video_id, "reason": f.reason} for f in self.failed]}
        if self.nothing_to_do:
            out["nothing_to_do"] = self.nothing_to_do
        return out

    def totals(self) -> str:
        """What the run did, in one line."""
        return (f"{self.embedded} embedded, {self.already} already embedded, "
                f"{len(self.failed)} failed")


def cache_loader(cache: ThumbnailCache) -> Any:
    """A pipeline loader reading each item's bytes from the cache by its stored digest."""

    def load(item: WorkItem) -> bytes:
        digest = item.meta.thumbnail_sha256
        if not digest:
            raise FetchError("no cached thumbnail (stored before the cache existed): "
                             "ingest or add it again to cache it")
        data = cache.get(digest)
        if data is None:
            raise FetchError(f"thumbnail {digest[:12]}... is missing from the cache under "
                             f"{cache.root}: ingest or add it again")
        return data

    return load


def reembed(service: Service, *, progress: Progress | None = None) -> ReembedSummary:
    """Embed every stored video lacking a vector for the service's model, from the cache.

    It writes vectors, so it holds the writer lock: one writer at a time keeps embedding
    row ids increasing in commit order, which the vector index's watermark relies on.

    Every stored video lacking a vector for the service's model has its thumbnail bytes read
    from the content-addressed cache and goes through the same pipeline stages as an ingest;
    the vectors are stored under that model and added to that model's own index. Videos
    whose bytes are not cached are listed as failed. A second run finds nothing to do.
    ``progress`` counts the videos as they are embedded or fail.
    """
    store = service.store
    if not store.exists():
        from indexer.errors import EmptyCorpusError

        raise EmptyCorpusError(f"the corpus at {service.settings.home} is empty: nothing "
                               "to re-embed")
    progress = progress or NullProgress()
    with writer_lock(service.settings.home, "reembed", engine=store.engine):
        summary = _reembed(service, progress)
    progress.ended(f"nothing to do: {summary.nothing_to_do}" if summary.nothing_to_do
                   else summary.totals())
    return summary


LABEL = "videos"  # the label of reembed's one task


class _StoredSource:
    """The stored videos lacking a vector for the model, as a source: a batch a group."""

    claims = False

    def __init__(self, todo: list[tuple[str, str | None]], summary: ReembedSummary,
                 progress: Progress, size: int) -> None:
        self.todo = todo  # (video id, thumbnail digest)
        self.summary = summary
        self.progress = progress
        self.size = max(1, size)

    def groups(self) -> Iterator[Group[None]]:
        """Every video to re-embed; its bytes come from the cache by its digest."""
        for start in range(0, len(self.todo), self.size):
            yield Group([WorkItem(meta=VideoMeta(video_id=vid, source="", thumbnail_sha256=sha))
                         for vid, sha in self.todo[start:start + self.size]], None)

    def settle(self, group: Group[None], ids: list[str]) -> set[str]:
        """Nothing is claimed, so nothing is settled elsewhere."""
        return set()

    def stored(self, group: Group[None], result: PipelineResult) -> list[str]:
        """Count what was embedded and what failed; no details are wanted."""
        self.summary.embedded += len(result.stored)
        self.summary.failed.extend(result.failed)
        self.progress.advanced(LABEL, len(group.items), f"{len(result.stored)} embedded, "
                                                        f"{len(result.failed)} failed")
        return []


def _reembed(service: Service, progress: Progress) -> ReembedSummary:
    store = service.store
    service.prepare_for_writing()
    model = service.spec.model_id
    summary = ReembedSummary(model=model)
    todo = store.videos_without_vector(model)
    summary.already = store.counts(model)["vectors"]
    progress.started(Plan("reembed", f"{plural(len(todo), 'video')} to embed with {model}",
                          (Task(LABEL, len(todo), "videos"),), "videos"))
    if not todo:
        summary.nothing_to_do = (f"all {plural(summary.already, 'stored video')} already have "
                                 f"{model} vectors")
        return summary

    def write(metas: list[VideoMeta], vectors: np.ndarray, model_id: str) -> np.ndarray:
        # Vectors only: the videos' metadata and fetched_at are not touched by a re-embed.
        return store.add_vectors([m.video_id for m in metas], vectors, model_id)

    run_id = store.start_run("reembed")
    status = "failed"
    index = service.index()
    started = time.perf_counter()
    try:
        settings = service.settings
        pipeline: Pipeline[Group[None]] = Pipeline(
            loader=cache_loader(service.cache), embedder=service.embedder, store=store,
            index=index, batch_size=settings.batch_size, workers=settings.download_workers,
            write=write)
        with run_heartbeat(store, run_id, settings.claim_lease / 3), pipeline:
            Loop(_StoredSource(todo, summary, progress, settings.batch_size), pipeline).run()
        summary.times = dataclasses.replace(pipeline.times)
        status = "done"
    finally:
        summary.times.wall = time.perf_counter() - started
        save_and_record(store, lambda: index, run_id, status,
                        {**summary.to_json(), "kind": "reembed"})
    return summary
