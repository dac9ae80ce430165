"""Ingest stages: load (fetch or read, decode, preprocess) -> embed in batches -> write.

Loading runs in a bounded thread pool so downloads overlap the model, which runs
on the calling thread in batches. A per-item failure is counted and named, never
fatal to the batch.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.errors import FetchError, ImageDecodeError, ImagePathError
from indexer.fetch import ImageFetcher
from indexer.images import decode_image, read_image_bytes
from indexer.models import Embedder
from indexer.records import Failure, VideoMeta
from indexer.store import Store
from indexer.thumbcache import ThumbnailCache
from indexer.vector_index import VectorIndex, l2_normalise

__all__ = [
    "PipelineResult",
    "StageTimes",
    "WorkItem",
    "make_loader",
    "run_pipeline",
]

# Errors that belong to one item: it is skipped and listed, the batch goes on.
ITEM_ERRORS = (FetchError, ImageDecodeError, ImagePathError)


@dataclass(frozen=True)
class WorkItem:
    """One image to ingest: where its pixels come from and the metadata to store."""

    meta: VideoMeta
    url: str | None = None
    path: Path | None = None


@dataclass
class StageTimes:
    """Seconds spent per stage (load is summed over worker threads)."""

    load: float = 0.0
    embed: float = 0.0
    write: float = 0.0
    wall: float = 0.0

    def add(self, other: StageTimes) -> None:
        """Accumulate another run's times into this one."""
        self.load += other.load
        self.embed += other.embed
        self.write += other.write
        self.wall += other.wall


@dataclass
class PipelineResult:
    """What one pipeline run stored and what it could not."""

    stored: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)


Loader = Callable[[WorkItem], bytes]
# (metadata, L2-normalised (n, dim) vectors, model id) -> embedding row ids int64 (n,)
Writer = Callable[[list[VideoMeta], np.ndarray, str], np.ndarray]


def make_loader(fetcher: ImageFetcher) -> Loader:
    """A loader that downloads URLs with ``fetcher`` and reads paths from disk."""

    def load(item: WorkItem) -> bytes:
        if item.path is not None:
            return read_image_bytes(item.path)
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


Preprocess = Callable[[Image.Image], np.ndarray]


def _load_one(item: WorkItem, loader: Loader, preprocess: Preprocess,
              cache: ThumbnailCache | None) -> _Loaded:
    start = time.perf_counter()
    try:
        data = loader(item)
        array = preprocess(decode_image(data, str(item.path or item.url)))
        meta = item.meta
        if cache is not None:  # only bytes that decoded are kept
            meta = dataclasses.replace(meta, thumbnail_sha256=cache.put(data))
        return _Loaded(meta, array, None, time.perf_counter() - start)
    except ITEM_ERRORS as exc:
        return _Loaded(item.meta, None, Failure(item.meta.video_id, str(exc)),
                       time.perf_counter() - start)


def _load_all(items: Iterable[WorkItem], loader: Loader, preprocess: Preprocess,
              cache: ThumbnailCache | None, workers: int, window: int) -> Iterator[_Loaded]:
    """Load items in a pool, keeping at most ``window`` in flight, yielding in input order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load") as pool:
        pending: deque[Future[_Loaded]] = deque()
        for item in items:
            pending.append(pool.submit(_load_one, item, loader, preprocess, cache))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def run_pipeline(items: Iterable[WorkItem], *, loader: Loader, embedder: Embedder,
                 store: Store, index: VectorIndex, cache: ThumbnailCache | None = None,
                 batch_size: int = 32, workers: int = 8,
                 write: Writer | None = None) -> PipelineResult:
    """Load, embed and write ``items``; database rows first, then the index.

    With a ``cache``, the bytes of every image that decoded are kept there and
    their digest is stored with the video. ``write`` replaces the default
    database writer (``store.add_embedded``: metadata and vectors).
    """
    result = PipelineResult()
    started = time.perf_counter()
    metas: list[VideoMeta] = []
    arrays: list[np.ndarray] = []

    def flush() -> None:
        if not metas:
            return
        t0 = time.perf_counter()
        vectors = l2_normalise(embedder.embed(np.stack(arrays)))
        t1 = time.perf_counter()
        ids = (write or store.add_embedded)(metas, vectors, embedder.model_id)
        index.add(ids, vectors)
        result.times.embed += t1 - t0
        result.times.write += time.perf_counter() - t1
        result.stored.extend(m.video_id for m in metas)
        metas.clear()
        arrays.clear()

    window = max(batch_size * 2, workers * 2)
    for loaded in _load_all(items, loader, embedder.preprocess, cache, workers, window):
        result.times.load += loaded.seconds
        if loaded.failure is not None:
            result.failed.append(loaded.failure)
            continue
        assert loaded.array is not None
        metas.append(loaded.meta)
        arrays.append(loaded.array)
        if len(metas) >= batch_size:
            flush()
    flush()
    result.times.wall = time.perf_counter() - started
    return result
