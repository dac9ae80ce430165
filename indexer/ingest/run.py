"""An ingest run: records itself, feeds work to the pipeline, saves the index at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from indexer.errors import QuotaExceededError, ThumbsearchError
from indexer.ingest.claims import Claims
from indexer.ingest.pipeline import Finished, Pipeline, PipelineResult, WorkItem, make_loader
from indexer.ingest.summary import IngestSummary
from indexer.ingest.watch import WatchCheck
from indexer.records import VideoMeta
from indexer.service import Service
from indexer.store.metadata import Store
from indexer.store.writer import writer_lock
from indexer.vectors.index import VectorIndex

if TYPE_CHECKING:
    pass

__all__ = ["IngestRun", "ingest_run", "run_heartbeat", "save_and_record"]

T = TypeVar("T")


class IngestRun:
    """The state of one run: its summary and, once something is embedded, the open index.

    Work submitted with ``submit`` goes through one pipeline for the whole run, so the
    model embeds one group while the next is searched for and downloaded (the run is
    the loop's ``Stages`` in this process). Images are downloaded with the service's
    fetcher.
    """

    def __init__(self, service: Service, summary: IngestSummary,
                 claims: Claims | None = None, run_id: int | None = None) -> None:
        self.service = service
        self.summary = summary
        settings = service.settings
        self.claims = claims or Claims(service.store, settings.claim_lease,
                                       settings.worker_name)
        self.index: VectorIndex | None = None
        # Every batch stored is checked against the watchlist (indexer.ingest.watch).
        self.watch = WatchCheck(service.store, service.spec.model_id, run_id)
        self._loader = make_loader(service.fetcher, settings.max_image_bytes)
        self._pipeline: Pipeline[Any] | None = None

    def _started(self) -> Pipeline[Any]:
        if self._pipeline is None:
            if self.index is None:
                self.index = self.service.index()
            settings = self.service.settings
            self._pipeline = Pipeline(loader=self._loader, embedder=self.service.embedder,
                                      store=self.service.store, index=self.index,
                                      cache=self.service.cache, batch_size=settings.batch_size,
                                      workers=settings.download_workers,
                                      on_stored=self.watch.check)
        return self._pipeline

    def submit(self, items: Sequence[WorkItem], tag: T) -> list[Finished[T]]:
        """Queue ``items`` as a group named ``tag``; return the groups finished meanwhile."""
        if not items and self._pipeline is None:
            return [Finished(tag, PipelineResult())]
        return self._started().submit(items, tag)

    def drain(self) -> list[Finished[Any]]:
        """Wait until everything submitted is stored (or failed); return the groups not
        returned yet."""
        return [] if self._pipeline is None else self._pipeline.drain()

    def write(self, metas: Sequence[VideoMeta], vectors: np.ndarray) -> None:
        """Store videos embedded elsewhere: database rows, then the index (as the pipeline does).

        ``vectors`` are (n, dim) float32, L2-normalised, from the service's model.
        """
        if self.index is None:
            self.index = self.service.index()
        ids = self.service.store.add_embedded(list(metas), vectors, self.service.spec.model_id)
        self.index.add_stored(ids, vectors)  # replays rows other workers stored
        self.watch.check([meta.video_id for meta in metas], vectors)

    def close(self, cancel: bool = False) -> None:
        """Stop the pipeline (finishing its work, unless ``cancel``) and add up its times."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        try:
            if not cancel:
                pipeline.drain()
        finally:
            pipeline.close(cancel=cancel)
            self.summary.times.add(pipeline.times)


@contextmanager
def ingest_run(service: Service, kind: str, *, wait: float = 0.0,
               exclusive: bool = False) -> Iterator[IngestRun]:
    """Run a recorded ingest under the writer lock; a quota stop ends it with ``stopped`` set.

    The lock is held shared (other adding runs go on at the same time) unless
    ``exclusive``; it is waited for up to ``wait`` seconds (WriterBusyError after
    that). The run's claims are renewed while it lasts and released at its end.

    Runs that only add (ingest, add-ids, add) hold the writer lock shared, so several run at
    once on one host or many; they divide the work with leases (``run.claims``,
    ``indexer.ingest.claims``). Runs that remove vectors (refresh) hold it exclusive.
    """
    with ExitStack() as stack:
        stack.enter_context(writer_lock(service.settings.home, kind, wait=wait,
                                        engine=service.store.engine, shared=not exclusive))
        yield stack.enter_context(_recorded_run(service, kind))


@contextmanager
def _recorded_run(service: Service, kind: str) -> Iterator[IngestRun]:
    service.prepare_for_writing()
    store = service.store
    run_id = store.start_run(kind)
    run = IngestRun(service, IngestSummary(run_id=run_id), run_id=run_id)
    started = time.perf_counter()
    status = "failed"
    try:
        # Claims are released once what was claimed is stored, or given up.
        with run.claims, run_heartbeat(store, run_id, service.settings.claim_lease / 3), \
                _stored_on_quota(run):
            yield run
            run.close()
        status = "done"
    except QuotaExceededError as exc:
        run.summary.stopped = str(exc)
        status = "quota"
    finally:
        run.close(cancel=True)
        run.summary.matches = run.watch.found
        run.summary.watched = run.watch.watched
        run.summary.times.wall = time.perf_counter() - started
        save_and_record(store, lambda: run.index or service.index(), run_id, status,
                        run.summary.record())


@contextmanager
def _stored_on_quota(run: IngestRun) -> Iterator[None]:
    """On a quota stop, store what was fetched before it (then let the stop through)."""
    try:
        yield
    except QuotaExceededError:
        run.close()
        raise


def save_and_record(store: Store, index: Callable[[], VectorIndex], run_id: int, status: str,
                    record: dict[str, Any]) -> None:
    """Save the index, then record how the run ended, also when the save fails.

    Saved even when nothing new was stored: a writer killed in the middle of a save can
    leave the index files disagreeing, and every open replays until the next one. Rows are
    already committed, so replay covers a failed save: its error is raised only when the
    run itself did not fail (a failed run's own error is the one to show).
    """
    try:
        index().save()
    except ThumbsearchError:
        if status != "failed":
            raise
    finally:
        store.finish_run(run_id, status, record)


@contextmanager
def run_heartbeat(store: Store, run_id: int, every: float) -> Iterator[None]:
    """Record every ``every`` seconds, on a thread of its own, that the run's process lives.

    Another host cannot see whether the process lives; a heartbeat older than the claim
    lease tells it the run was interrupted (``indexer.store.history``).
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(0.05, every)):
            with suppress(ThumbsearchError):  # a short outage: the next beat tries again
                store.heartbeat_run(run_id)

    thread = threading.Thread(target=beat, name="run-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
