"""An ingest run: records itself, feeds work to the pipeline, saves the index at the end."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from indexer.errors import QuotaExceededError, ThumbsearchError
from indexer.lock import writer_lock
from indexer.pipeline import WorkItem, make_loader, run_pipeline
from indexer.service import Service
from indexer.summary import IngestSummary
from indexer.vector_index import VectorIndex

__all__ = ["IngestRun", "ingest_run"]


class IngestRun:
    """The state of one run: its summary and, once something is embedded, the open index."""

    def __init__(self, service: Service, summary: IngestSummary) -> None:
        self.service = service
        self.summary = summary
        self.index: VectorIndex | None = None
        self._loader = make_loader(service.fetcher)

    def embed(self, items: Sequence[WorkItem]) -> list[str]:
        """Load, embed and store ``items``; count what went in and what failed."""
        if not items:
            return []
        if self.index is None:
            self.index = self.service.index()
        settings = self.service.settings
        result = run_pipeline(items, loader=self._loader, embedder=self.service.embedder,
                              store=self.service.store, index=self.index,
                              cache=self.service.cache,
                              batch_size=settings.batch_size, workers=settings.download_workers)
        self.summary.new += len(result.stored)
        self.summary.failed.extend(result.failed)
        self.summary.times.add(result.times)
        return result.stored


@contextmanager
def ingest_run(service: Service, kind: str, *, wait: float = 0.0) -> Iterator[IngestRun]:
    """Run a recorded ingest under the writer lock; a quota stop ends it with ``stopped`` set.

    The lock is waited for up to ``wait`` seconds (WriterBusyError after that).
    """
    with ExitStack() as stack:
        stack.enter_context(writer_lock(service.settings.home, kind, wait=wait))
        yield stack.enter_context(_recorded_run(service, kind))


@contextmanager
def _recorded_run(service: Service, kind: str) -> Iterator[IngestRun]:
    service.prepare_for_writing()
    store = service.store
    run = IngestRun(service, IngestSummary())
    run_id = store.start_run(kind)
    started = time.perf_counter()
    status = "failed"
    try:
        yield run
        status = "done"
    except QuotaExceededError as exc:
        run.summary.stopped = str(exc)
        status = "quota"
    finally:
        run.summary.times.wall = time.perf_counter() - started
        try:
            if run.index is not None:
                run.index.save()  # rows are already committed; replay covers a failed save
        except ThumbsearchError:
            if status != "failed":
                raise
        finally:
            store.finish_run(run_id, status, run.summary.record())
