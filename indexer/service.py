"""One wiring function that builds the service from settings.

Shared by the CLI, the benchmarks and tests. Collaborators can be passed in; the
model loads lazily (TensorFlow is imported only when something must be embedded)
and so does the YouTube client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from indexer.db import make_engine
from indexer.errors import EmptyCorpusError
from indexer.fetch import HttpImageFetcher, ImageFetcher
from indexer.models import Embedder, ModelSpec, load_embedder, model_spec
from indexer.settings import Settings
from indexer.store import Store
from indexer.thumbcache import ThumbnailCache
from indexer.vector_index import VectorIndex
from indexer.youtube import GoogleYouTubeApi, YouTubeApi

__all__ = ["Service", "build_service"]


@functools.lru_cache(maxsize=2)
def _shared_embedder(model_id: str) -> Embedder:
    # One process builds a model once, however many services it wires (tests, benchmarks).
    return load_embedder(model_id)


@dataclass
class Service:
    """The parts of thumbsearch, wired together; heavy parts are built on first use."""

    settings: Settings
    store: Store
    fetcher: ImageFetcher
    cache: ThumbnailCache
    spec: ModelSpec
    _embedder_factory: Callable[[], Embedder]
    _youtube_factory: Callable[[], YouTubeApi]
    _embedder: Embedder | None = field(default=None, init=False)
    _youtube: YouTubeApi | None = field(default=None, init=False)
    _index: VectorIndex | None = field(default=None, init=False)

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._embedder = self._embedder_factory()
        return self._embedder

    @property
    def youtube(self) -> YouTubeApi:
        """The YouTube API client, built on first use (needs the API key)."""
        if self._youtube is None:
            self._youtube = self._youtube_factory()
        return self._youtube

    def prepare_for_writing(self) -> None:
        """Create or upgrade the database schema before a write."""
        self.store.upgrade()

    def index(self) -> VectorIndex:
        """The vector index, opened and caught up with the store on first use."""
        if self._index is None:
            self._index = VectorIndex.open(self.settings.index_dir, self.spec.model_id,
                                           self.spec.dim, self.store)
        return self._index

    def require_corpus(self) -> VectorIndex:
        """The index, or EmptyCorpusError when nothing has been ingested yet."""
        if not self.store.exists():
            raise EmptyCorpusError(
                f"the corpus at {self.settings.home} is empty: run `thumbsearch ingest QUERY` "
                "or `thumbsearch add PATH` first")
        index = self.index()
        if index.size == 0:
            raise EmptyCorpusError(
                f"the corpus at {self.settings.home} has no vectors for model "
                f"{self.spec.model_id}: run `thumbsearch ingest QUERY` or `thumbsearch add PATH`")
        return index

    def close(self) -> None:
        """Release database connections."""
        self.store.engine.dispose()


def build_service(settings: Settings, *, fetcher: ImageFetcher | None = None,
                  youtube: YouTubeApi | None = None,
                  embedder: Embedder | None = None) -> Service:
    """Build the service; any collaborator passed in is used instead of the real one."""
    spec = model_spec(settings.model) if embedder is None else ModelSpec(
        embedder.model_id, embedder.dim, embedder.input_size, "given by the caller")
    store = Store(make_engine(settings.database_url))
    image_fetcher = fetcher or HttpImageFetcher(
        settings.image_hosts, timeout=settings.http_timeout,
        max_bytes=settings.max_image_bytes, pool_size=settings.download_workers * 2)

    def make_embedder() -> Embedder:
        return embedder if embedder is not None else _shared_embedder(settings.model)

    def make_youtube() -> YouTubeApi:
        if youtube is not None:
            return youtube
        return GoogleYouTubeApi(settings.require_api_key(), settings.youtube_endpoint,
                                timeout=settings.http_timeout)

    return Service(settings=settings, store=store, fetcher=image_fetcher,
                   cache=ThumbnailCache(settings.thumbnail_cache_dir), spec=spec,
                   _embedder_factory=make_embedder, _youtube_factory=make_youtube)
