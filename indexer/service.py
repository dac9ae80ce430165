"""One wiring function that builds the service from settings."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.errors import EmptyCorpusError
from indexer.progress import NullProgress, Progress
from indexer.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from types import TracebackType

    from indexer.images.fetch import ImageFetcher
    from indexer.images.thumbcache import ThumbnailCache
    from indexer.models import Embedder, ModelSpec
    from indexer.store.metadata import Store
    from indexer.store.reads import Reads, SqliteReads
    from indexer.vectors.index import VectorIndex
    from indexer.youtube.client import YouTubeApi
    from indexer.youtube.quota import QuotaLedger

__all__ = ["Corpus", "FetcherOnFirstUse", "Service", "build_service", "image_fetcher",
           "keep_corpus_model", "settings_embedder"]

_PARTS = ("store", "embedder", "youtube", "index")  # the lazily built parts of a Service


@functools.lru_cache(maxsize=4)
def _shared_embedder(model_id: str, weights: Path | None = None,
                     weights_dir: Path | None = None, runtime: str = "auto",
                     cache_dir: Path | None = None, bulk: bool = False) -> Embedder:
    # One process builds a model once, however many services it wires (tests, benchmarks).
    from indexer.models import load_embedder

    return load_embedder(model_id, weights, weights_dir, runtime=runtime, cache_dir=cache_dir,
                         bulk=bulk)


def settings_embedder(settings: Settings, weights: Path | None = None, *,
                      bulk: bool = False) -> Embedder:
    """The model ``settings`` name on their runtime, built once per process (loads TensorFlow
    or LiteRT); ``weights`` is a local weights file (``--weights``); ``bulk`` for jobs that
    embed batches (the runtime ``auto`` picks may differ: models.runtime.resolve_runtime)."""
    from indexer.models import model_spec

    return _shared_embedder(model_spec(settings.model).model_id, weights, settings.weights_dir,
                            settings.runtime, settings.model_cache_dir, bulk)


def image_fetcher(settings: Settings, max_seconds: float | None = None) -> ImageFetcher:
    """The HTTP image fetcher ``settings`` describe (allowed hosts, timeout, size limit);
    ``max_seconds`` bounds a whole download, retries included (None: the fetcher's default)."""
    # requests is imported only when a fetcher is built.
    from indexer.images.fetch import HttpImageFetcher

    return HttpImageFetcher(
        settings.image_hosts, timeout=settings.http_timeout,
        max_bytes=settings.max_image_bytes, pool_size=settings.download_workers * 2,
        max_seconds=max_seconds)


class FetcherOnFirstUse:
    """The HTTP image fetcher of ``settings``, built on the first download: a lookup of a
    stored video needs none, so it never imports requests."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._fetcher: ImageFetcher | None = None

    def fetch(self, url: str) -> bytes:
        """Download ``url`` (building the fetcher the first time)."""
        if self._fetcher is None:
            self._fetcher = image_fetcher(self._settings)
        return self._fetcher.fetch(url)


@dataclass(frozen=True)
class Corpus:
    """What a lookup reads: the index, caught up, and the database reads it replays from."""

    index: VectorIndex
    reads: Reads


@dataclass
class Service:
    """The parts of thumbsearch, wired together; heavy parts are built on first use."""

    settings: Settings
    fetcher: ImageFetcher
    cache: ThumbnailCache
    spec: ModelSpec
    _store_factory: Callable[[], Store]
    _embedder_factory: Callable[[], Embedder]
    _youtube_factory: Callable[[Service], YouTubeApi]  # given the service (its ledger)
    _lean_reads: SqliteReads | None = None
    progress: Progress = field(default_factory=NullProgress)  # hears the model load
    _store: Store | None = field(default=None, init=False)
    _embedder: Embedder | None = field(default=None, init=False)
    _youtube: YouTubeApi | None = field(default=None, init=False)
    _index: VectorIndex | None = field(default=None, init=False)
    # Guards building each lazy part once when threads (a server's requests) ask together;
    # held only while a part is built, never while one is used.
    _building: dict[str, threading.Lock] = field(
        default_factory=lambda: {p: threading.Lock() for p in _PARTS}, init=False,
        repr=False)
    # Guards the index's catch-up with the database: one refresh at a time, and a lookup
    # that finds one under way searches the index as it stands instead of waiting.
    _refreshing: threading.Lock = field(default_factory=threading.Lock, init=False,
                                        repr=False)

    def _once(self, part: str, build: Callable[[], Any]) -> Any:
        """The lazy ``part`` (an attribute ``_<part>``), built by one thread only."""
        built = getattr(self, f"_{part}")
        if built is None:
            with self._building[part]:
                built = getattr(self, f"_{part}")
                if built is None:
                    built = build()
                    setattr(self, f"_{part}", built)
        return built

    @property
    def store(self) -> Store:
        """The database, through SQLAlchemy (engine created on first use)."""
        store: Store = self._once("store", self._store_factory)
        return store

    def _reads(self) -> Reads:
        """What the index reads from: the lean SQLite reader when one was asked for, else the
        store (lookups reach it through ``require_corpus``)."""
        return self._lean_reads if self._lean_reads is not None else self.store

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use (a step ``progress`` hears, with its
        duration)."""
        embedder: Embedder = self._once("embedder", self._load_embedder)
        return embedder

    def _load_embedder(self) -> Embedder:
        self.progress.begin(f"loading model {self.spec.model_id}")
        started = time.perf_counter()
        embedder = self._embedder_factory()
        self.progress.done(f"model ready in {time.perf_counter() - started:.1f} s")
        return embedder

    @property
    def youtube(self) -> YouTubeApi:
        """The YouTube API client, built on first use (needs the API key)."""
        youtube: YouTubeApi = self._once("youtube", lambda: self._youtube_factory(self))
        return youtube

    @property
    def ledger(self) -> QuotaLedger:
        """The daily API quota ledger (its state lives in the database)."""
        from indexer.youtube.quota import QuotaLedger

        return QuotaLedger(self.store, self.settings.search_quota, self.settings.units_quota)

    def prepare_for_writing(self) -> None:
        """Create or upgrade the database schema before a write."""
        self.store.upgrade()

    def index(self) -> VectorIndex:
        """The vector index, opened and caught up with the store on first use."""

        def open_index() -> VectorIndex:
            from indexer.vectors.index import VectorIndex

            return VectorIndex.open(self.settings.index_dir, self.spec.model_id,
                                    self.spec.dim, self._reads())

        index: VectorIndex = self._once("index", open_index)
        return index

    def require_corpus(self) -> Corpus:
        """The index, caught up with the database, and the reads a lookup makes there; or
        EmptyCorpusError when nothing has been ingested yet.

        An index opened earlier by this service (a long-running server) first replays
        the rows stored since, by any run on any host: one query when there are none.
        The replay is built aside and swapped in (``VectorIndex.refresh``), so searches in
        other threads go on meanwhile; a lookup that finds another thread replaying does
        not wait for it and searches the index as it stands.
        """
        reads = self._reads()
        if not reads.exists():
            raise EmptyCorpusError(
                f"the corpus at {self.settings.home} is empty: run `thumbsearch ingest QUERY` "
                "or `thumbsearch add PATH` first")
        opened = self._index is not None
        index = self.index()
        if opened and self._refreshing.acquire(blocking=False):
            try:
                index.refresh(reads)
            finally:
                self._refreshing.release()
        if index.size == 0 and reads.counts(self.spec.model_id)["videos"]:
            raise EmptyCorpusError(
                f"the corpus at {self.settings.home} holds no vectors for model "
                f"{self.spec.model_id}: run `thumbsearch reembed --model {self.spec.model_id}`")
        if index.size == 0:
            raise EmptyCorpusError(
                f"the corpus at {self.settings.home} has no vectors for model "
                f"{self.spec.model_id}: run `thumbsearch ingest QUERY` or `thumbsearch add PATH`")
        return Corpus(index, reads)

    def close(self) -> None:
        """Release database connections."""
        if self._store is not None:
            self._store.engine.dispose()
        if self._lean_reads is not None:
            self._lean_reads.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def keep_corpus_model(settings: Settings) -> Settings:
    """``settings``, or with the model of an earlier default when no model was named and the
    corpus' index was built with that model only: a corpus keeps answering after an upgrade
    changes the default, until ``thumbsearch reembed --model NEW`` moves it."""
    from indexer.settings import PREVIOUS_DEFAULT_MODELS
    from indexer.vectors.files import indexed_models

    if settings.model_chosen:
        return settings
    held = indexed_models(settings.index_dir)
    if settings.model in held:
        return settings
    earlier = [model for model in held if model in PREVIOUS_DEFAULT_MODELS]
    if len(earlier) != 1:
        return settings
    log.info("the corpus at %s was built with %s: using it (thumbsearch reembed --model %s "
             "moves it to the default)", settings.home, earlier[0], settings.model)
    return dataclasses.replace(settings, model=earlier[0])


def build_service(settings: Settings, *, fetcher: ImageFetcher | None = None,
                  youtube: YouTubeApi | None = None,
                  embedder: Embedder | None = None,
                  weights: Path | None = None,
                  clock: Callable[[], datetime] | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  lookups_only: bool = False, progress: Progress | None = None) -> Service:
    """Build the service; any collaborator passed in is used instead of the real one.

    ``clock`` (UTC now) and ``sleep`` (retry backoff) are injectable for tests;
    ``weights`` is a local weights file for the model (``--weights``). A caller that
    only looks up neighbours passes ``lookups_only``: on a SQLite file its reads then
    go through ``sqlite3`` (``indexer.store.reads``) and SQLAlchemy is never imported.

    Shared by the CLI, the web app, the benchmarks and tests, each using it as a context
    manager (``with build_service(settings) as service:`` closes its connections).
    Collaborators can be passed in; the model loads lazily (TensorFlow is imported only
    when something must be embedded) and so does the YouTube client; ``progress`` hears
    the model load (nothing by default).
    """
    # Imported here so that importing this module stays cheap for the command line.
    from indexer.images.thumbcache import ThumbnailCache
    from indexer.memory import keep_large_blocks_mapped
    from indexer.models import ModelSpec, model_spec
    from indexer.store.reads import SqliteReads, sqlite_file

    keep_large_blocks_mapped()
    if embedder is None:
        settings = keep_corpus_model(settings)
    spec = model_spec(settings.model) if embedder is None else ModelSpec(
        embedder.model_id, embedder.dim, embedder.input_size, "given by the caller")
    lean_file = sqlite_file(settings.database_url) if lookups_only else None

    def make_store() -> Store:
        from indexer.store.db import make_engine
        from indexer.store.metadata import Store

        engine = make_engine(settings.database_url)
        return Store(engine) if clock is None else Store(engine, clock)

    def make_embedder() -> Embedder:
        if embedder is not None:
            return embedder
        # Lookups embed one image at a time; every other job embeds batches.
        return settings_embedder(settings, weights, bulk=not lookups_only)

    def make_youtube(service: Service) -> YouTubeApi:
        if youtube is not None:
            return youtube
        from indexer.youtube.client import GoogleYouTubeApi

        ledger = service.ledger
        return GoogleYouTubeApi(settings.require_api_key(), settings.youtube_endpoint,
                                timeout=settings.http_timeout, charge=ledger.charge,
                                on_quota_exceeded=ledger.mark_exhausted, sleep=sleep)

    return Service(settings=settings, fetcher=fetcher or image_fetcher(settings),
                   cache=ThumbnailCache(settings.thumbnail_cache_dir), spec=spec,
                   _store_factory=make_store, _embedder_factory=make_embedder,
                   _youtube_factory=make_youtube,
                   _lean_reads=SqliteReads(lean_file) if lean_file is not None else None,
                   progress=progress or NullProgress())
