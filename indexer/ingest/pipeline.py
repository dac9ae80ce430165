"""Ingest stages: load (fetch or read, decode, preprocess) -> embed in batches -> write."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import numpy as np

from indexer.errors import FetchError, ImageDecodeError, ImagePathError, ThumbnailMissingError
from indexer.images.decode import decode_image, read_image_bytes
from indexer.images.fetch import ImageFetcher
from indexer.images.thumbcache import ThumbnailCache
from indexer.models import Embedder
from indexer.records import Failure, VideoMeta
from indexer.settings import DEFAULT_MAX_IMAGE_BYTES
from indexer.store.metadata import Store
from indexer.vectors.index import VectorIndex, l2_normalise

__all__ = [
    "CPU_STEPS",
    "Finished",
    "Pipeline",
    "PipelineResult",
    "StageTimes",
    "WorkItem",
    "make_loader",
    "run_pipeline",
]

# Errors that belong to one item: it is skipped and listed, the batch goes on.
ITEM_ERRORS = (FetchError, ImageDecodeError, ImagePathError)

T = TypeVar("T")


@dataclass(frozen=True)
class WorkItem:
    """One image to ingest: where its pixels come from and the metadata to store."""

    meta: VideoMeta
    url: str | None = None
    path: Path | None = None


#: The steps whose CPU time (of their own thread) ``StageTimes.cpu`` adds up.
CPU_STEPS = ("fetch", "decode", "preprocess", "cache", "batch", "embed", "write")


@dataclass
class StageTimes:
    """Seconds spent per stage (load is summed over worker threads), and the CPU seconds
    of each step in ``CPU_STEPS`` on its own thread (the model's helper threads excluded)."""

    load: float = 0.0
    embed: float = 0.0
    write: float = 0.0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_STEPS, 0.0))

    def add(self, other: StageTimes) -> None:
        """Accumulate another run's times into this one."""
        self.load += other.load
        self.embed += other.embed
        self.write += other.write
        self.wall += other.wall
        for step, seconds in other.cpu.items():
            self.cpu[step] = self.cpu.get(step, 0.0) + seconds


@dataclass
class PipelineResult:
    """What one pipeline run stored and what it could not."""

    stored: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    # Failed items whose image answered 404 (the video is gone): video id -> why.
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finished(Generic[T]):
    """A submitted group whose items are all stored or failed, with the tag it was given."""

    tag: T
    result: PipelineResult


Loader = Callable[[WorkItem], bytes]
# (metadata, L2-normalised (n, dim) vectors, model id) -> embedding row ids int64 (n,)
Writer = Callable[[list[VideoMeta], np.ndarray, str], np.ndarray]
# (video ids, their L2-normalised vectors) once stored: the watchlist's check
OnStored = Callable[[list[str], np.ndarray], object]


def make_loader(fetcher: ImageFetcher, max_file_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> Loader:
    """A loader that downloads URLs with ``fetcher`` and reads paths (``max_file_bytes`` each)."""

    def load(item: WorkItem) -> bytes:
        if item.path is not None:
            return read_image_bytes(item.path, max_file_bytes)
        if item.url is None:
            raise FetchError(f"{item.meta.video_id}: no image URL or path")
        return fetcher.fetch(item.url)

    return load


@dataclass
class _Loaded:
    meta: VideoMeta
    array: np.ndarray | None
    failure: Failure | None
    seconds: float
    missing: bool = False  # the failure is a 404: the image is gone
    # CPU seconds of this thread: fetch, decode, preprocess, cache
    cpu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def _load_one(item: WorkItem, loader: Loader, embedder: Embedder,
              cache: ThumbnailCache | None) -> _Loaded:
    start = time.perf_counter()
    marks = [time.thread_time()]
    try:
        data = loader(item)
        marks.append(time.thread_time())
        image = decode_image(data, str(item.path or item.url), reduce_to=embedder.input_size)
        marks.append(time.thread_time())
        array = embedder.preprocess(image)
        marks.append(time.thread_time())
        meta = item.meta
        if cache is not None:  # only bytes that decoded are kept
            meta = dataclasses.replace(meta, thumbnail_sha256=cache.put(data))
        marks.append(time.thread_time())
        return _Loaded(meta, array, None, time.perf_counter() - start, cpu=_steps(marks))
    except ITEM_ERRORS as exc:
        marks.append(time.thread_time())
        return _Loaded(item.meta, None, Failure(item.meta.video_id, str(exc)),
                       time.perf_counter() - start, isinstance(exc, ThumbnailMissingError),
                       _steps(marks))


def _steps(marks: list[float]) -> tuple[float, float, float, float]:
    """The four load steps' CPU from the thread-time marks taken so far (the rest 0)."""
    spans = [b - a for a, b in pairwise(marks)] + [0.0, 0.0, 0.0]
    return spans[0], spans[1], spans[2], spans[3]


class _BatchBuffer:
    """Model inputs gathered into one preallocated array, reused from batch to batch: no
    new (batch, h, w, 3) array (and its page faults) for every batch. What ``take`` returns
    is valid until the next ``append`` (the model reads it before that)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self._array: np.ndarray | None = None

    def append(self, item: np.ndarray) -> None:
        """Copy one model input in (the buffer is made, or remade, to its shape and type)."""
        array = self._array
        if array is None or array.shape[1:] != item.shape or array.dtype != item.dtype:
            if self.count:  # inputs of another shape: never mixed into one batch by callers
                raise ValueError(f"model input {item.shape} {item.dtype} does not match the "
                                 f"batch's {array.shape[1:] if array is not None else ()}")
            array = self._array = np.empty((self.size, *item.shape), dtype=item.dtype)
        array[self.count] = item
        self.count += 1

    def take(self) -> np.ndarray:
        """The inputs appended since the last ``take``, as one (n, ...) array."""
        assert self._array is not None and self.count
        count, self.count = self.count, 0
        return self._array[:count]


@dataclass
class _Group(Generic[T]):
    left: int
    tag: T
    result: PipelineResult = field(default_factory=PipelineResult)


# Messages from the embed thread to the writer: a batch, or one failed item.
@dataclass
class _Batch(Generic[T]):
    entries: list[tuple[_Group[T], VideoMeta]]
    vectors: np.ndarray


@dataclass
class _Failed(Generic[T]):
    group: _Group[T]
    failure: Failure
    missing: bool


class Pipeline(Generic[T]):
    """Load, embed and write groups of items concurrently; see the class docstring.

    Use as a context manager: leaving it normally waits for every group, leaving it
    with an exception cancels what has not been embedded yet. A stage error (the
    model, the database, the index, or an unexpected loader error) stops the pipeline
    and is raised once on the submitting thread, by ``submit``, ``poll`` or ``drain``,
    when no group finished before it is left to hand back.

    A ``Pipeline`` runs three stages at once, so the model never waits for the rest:
    loading in a bounded thread pool (downloads overlap, and decoding and resizing stay
    off the inference thread), embedding on one thread in batches that may span several
    submitted groups, and writing (database rows, then the index) on another. Work is
    submitted in groups (a search page, a folder), each with a tag naming it; the
    groups whose items are all stored or failed are returned, with their tags, by the
    submitting thread's next ``submit``, ``poll`` or ``drain``, in submission order. A
    per-item failure is counted and named, never fatal to the batch.
    """

    def __init__(self, *, loader: Loader, embedder: Embedder, store: Store, index: VectorIndex,
                 cache: ThumbnailCache | None = None, batch_size: int = 32, workers: int = 8,
                 write: Writer | None = None, on_stored: OnStored | None = None) -> None:
        """Stages over ``loader`` (bytes of an item), ``embedder`` and the writer.

        ``write`` replaces the default database writer (``store.add_embedded``: metadata
        and vectors); with a ``cache``, the bytes of every image that decoded are kept
        there and their digest is stored with the video. ``on_stored`` hears each batch
        once it is in the database and the index (on the writer thread).
        """
        self.loader = loader
        self.embedder = embedder
        self.index = index
        self.cache = cache
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers)
        self.write = write or store.add_embedded
        self.on_stored = on_stored
        self.times = StageTimes()
        # Items loading or loaded but not yet embedded: enough for the next batch to be
        # ready when the current one is done, and bounded, as each holds a model input.
        self.window = max(self.batch_size * 2, self.workers * 2)
        self._cv = threading.Condition()
        self._pending: deque[tuple[_Group[T], WorkItem]] = deque()
        self._groups: deque[_Group[T]] = deque()  # submitted, not complete, in order
        self._finished: deque[_Group[T]] = deque()  # complete, not yet handed back
        self._error: BaseException | None = None
        self._raised = False
        self._closing = False
        self._cancel = False
        self._writes: queue.Queue[_Batch[T] | _Failed[T] | None] = queue.Queue(maxsize=4)
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []

    # -- the submitting thread ---------------------------------------------------

    def submit(self, items: Iterable[WorkItem], tag: T) -> list[Finished[T]]:
        """Queue a group of items named ``tag``; return the groups finished meanwhile.

        Blocks while too many items wait to be loaded.
        """
        group = _Group(0, tag)
        batch = [(group, item) for item in items]
        group.left = len(batch)
        finished = self._handed([])
        with self._cv:
            if self._closing:
                raise RuntimeError("submit to a closed pipeline")
            self._start()
            self._groups.append(group)
            self._pending.extend(batch)
            self._complete_ready()
            self._cv.notify_all()
        while True:
            with self._cv:
                self._cv.wait_for(lambda: len(self._pending) <= self.window or self._finished
                                  or self._error is not None)
                room = len(self._pending) <= self.window or self._error is not None
            finished = self._handed(finished)
            if room:
                return finished

    def poll(self) -> list[Finished[T]]:
        """The groups finished so far, in submission order; raise a stage error (once)."""
        return self._handed([])

    def _handed(self, finished: list[Finished[T]]) -> list[Finished[T]]:
        """``finished`` and the groups finished since; a stage error raised when there are
        none (groups finished before it are handed back first, and it is raised next time)."""
        with self._cv:
            groups, self._finished = list(self._finished), deque()
            error = self._error if not self._raised else None
        finished = finished + [Finished(group.tag, group.result) for group in groups]
        if error is not None and not finished:
            self._raised = True
            raise error
        return finished

    def drain(self) -> list[Finished[T]]:
        """Wait until every submitted group is through; return those not returned yet."""
        finished: list[Finished[T]] = []
        while True:
            with self._cv:
                self._cv.wait_for(lambda: not self._groups or self._finished
                                  or self._error is not None)
                idle = not self._groups or self._error is not None
            finished = self._handed(finished)
            if idle:
                return finished

    def close(self, cancel: bool = False) -> None:
        """Stop the stages: after finishing everything submitted, or at once with ``cancel``.

        A batch already embedded is still written, so the store and index stay whole.
        """
        with self._cv:
            self._closing = True
            if cancel:
                self._cancel = True
                self._pending.clear()
            self._cv.notify_all()
        for thread in self._threads:
            thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._threads = []

    def __enter__(self) -> Pipeline[T]:
        """The pipeline itself."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Drain and close (groups not handed back yet are dropped); on an exception,
        cancel instead."""
        if exc_type is not None:
            self.close(cancel=True)
            return
        try:
            self.drain()
        except BaseException:
            self.close(cancel=True)
            raise
        self.close()
        self.poll()

    # -- the stage threads ---------------------------------------------------------

    def _start(self) -> None:
        if self._threads:
            return
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="load")
        self._threads = [threading.Thread(target=self._embed_loop, name="embed", daemon=True),
                         threading.Thread(target=self._write_loop, name="write", daemon=True)]
        for thread in self._threads:
            thread.start()

    def _complete_ready(self) -> None:
        # Called with the lock held: groups complete in submission order.
        while self._groups and self._groups[0].left == 0:
            self._finished.append(self._groups.popleft())
            self._cv.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cv:
            if self._error is None:
                self._error = exc
            self._cancel = True
            self._pending.clear()
            self._cv.notify_all()

    def _put(self, message: _Batch[T] | _Failed[T] | None) -> None:
        # The writer takes every message until the end marker, so this never blocks for long.
        self._writes.put(message)

    def _top_up(self, in_flight: deque[tuple[_Group[T], Future[_Loaded]]]) -> None:
        # Called with the lock held: keep ``window`` items loading or loaded.
        assert self._pool is not None
        while len(in_flight) < self.window and self._pending and not self._cancel:
            group, item = self._pending.popleft()
            future = self._pool.submit(_load_one, item, self.loader, self.embedder, self.cache)
            future.add_done_callback(self._wake)
            in_flight.append((group, future))
            self._cv.notify_all()  # room for a blocked submit

    def _wake(self, _future: Future[_Loaded]) -> None:
        with self._cv:
            self._cv.notify_all()

    def _result(self, future: Future[_Loaded],
                in_flight: deque[tuple[_Group[T], Future[_Loaded]]]) -> _Loaded | None:
        """The next item in order, dispatching newly submitted ones while it loads."""
        with self._cv:
            while not future.done():
                if self._cancel:
                    return None
                self._top_up(in_flight)
                self._cv.wait()
            if self._cancel:
                return None
        return future.result()

    def _embed_loop(self) -> None:
        try:
            self._embed_items()
        except BaseException as exc:  # any stage error stops the pipeline; raised by poll
            self._fail(exc)
        finally:
            self._put(None)

    def _embed_items(self) -> None:
        in_flight: deque[tuple[_Group[T], Future[_Loaded]]] = deque()
        entries: list[tuple[_Group[T], VideoMeta]] = []
        arrays = _BatchBuffer(self.batch_size)
        while True:
            with self._cv:
                self._top_up(in_flight)
                if self._cancel:
                    return
                if not in_flight and not entries:
                    if self._closing:
                        return
                    self._cv.wait()
                    continue
            if not in_flight:  # nothing more is coming for now: embed what there is
                self._embed(entries, arrays)
                entries = []
                continue
            group, future = in_flight.popleft()
            loaded = self._result(future, in_flight)
            if loaded is None:
                return
            self.times.load += loaded.seconds
            for step, seconds in zip(CPU_STEPS, loaded.cpu, strict=False):
                self.times.cpu[step] += seconds
            if loaded.failure is not None:
                self._put(_Failed(group, loaded.failure, loaded.missing))
                continue
            assert loaded.array is not None
            cpu = time.thread_time()
            entries.append((group, loaded.meta))
            arrays.append(loaded.array)
            self.times.cpu["batch"] += time.thread_time() - cpu
            if len(entries) >= self.batch_size:
                self._embed(entries, arrays)
                entries = []

    def _embed(self, entries: list[tuple[_Group[T], VideoMeta]],
               arrays: _BatchBuffer) -> None:
        start, cpu = time.perf_counter(), time.thread_time()
        vectors = l2_normalise(self.embedder.embed(arrays.take()))
        self.times.embed += time.perf_counter() - start
        self.times.cpu["embed"] += time.thread_time() - cpu
        self._put(_Batch(entries, vectors))

    def _write_loop(self) -> None:
        while True:
            message = self._writes.get()
            if message is None:
                return
            if self._error is not None:
                continue  # stopped: the embed thread's end marker follows
            try:
                self._write(message)
            except BaseException as exc:  # raised by poll on the submitting thread
                self._fail(exc)

    def _write(self, message: _Batch[T] | _Failed[T]) -> None:
        if isinstance(message, _Failed):
            with self._cv:
                message.group.result.failed.append(message.failure)
                if message.missing:
                    failure = message.failure
                    message.group.result.missing[failure.video_id] = failure.reason
                message.group.left -= 1
                self._complete_ready()
            return
        start, cpu = time.perf_counter(), time.thread_time()
        metas = [meta for _, meta in message.entries]
        ids = self.write(metas, message.vectors, self.embedder.model_id)
        self.index.add_stored(ids, message.vectors)  # replays rows other workers stored
        if self.on_stored is not None:
            self.on_stored([meta.video_id for meta in metas], message.vectors)
        self.times.write += time.perf_counter() - start
        self.times.cpu["write"] += time.thread_time() - cpu
        with self._cv:
            for group, meta in message.entries:
                group.result.stored.append(meta.video_id)
                group.left -= 1
            self._complete_ready()


def run_pipeline(items: Iterable[WorkItem], *, loader: Loader, embedder: Embedder,
                 store: Store, index: VectorIndex, cache: ThumbnailCache | None = None,
                 batch_size: int = 32, workers: int = 8,
                 write: Writer | None = None) -> PipelineResult:
    """Load, embed and write ``items``; database rows first, then the index.

    With a ``cache``, the bytes of every image that decoded are kept there and
    their digest is stored with the video. ``write`` replaces the default
    database writer (``store.add_embedded``: metadata and vectors).
    """
    started = time.perf_counter()
    pipeline: Pipeline[None] = Pipeline(loader=loader, embedder=embedder, store=store,
                                        index=index, cache=cache, batch_size=batch_size,
                                        workers=workers, write=write)
    with pipeline:
        finished = pipeline.submit(items, None)
        finished += pipeline.drain()
    result = finished[0].result if finished else PipelineResult()
    result.times = dataclasses.replace(pipeline.times, wall=time.perf_counter() - started)
    return result
