"""The query side as a library: open a corpus, ask for neighbours, duplicates and figures,
keep a watchlist."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from search.rerank import parse_rerank
from search.strength import LIKELY_REUPLOAD

if TYPE_CHECKING:
    from indexer.models import Embedder
    from indexer.service import Service
    from indexer.settings import Settings
    from indexer.store.watchlist import WatchItem, WatchMatch
    from search.duplicates import DuplicateGroup
    from search.neighbours import SimilarResult
    from search.watch import WatchAdded

__all__ = ["Thumbsearch"]


class Thumbsearch:
    """A thumbsearch corpus, opened for queries.

    ``home`` is the data directory (``THUMBSEARCH_HOME``; default: the environment's, then
    the platform's data directory) and ``model`` the model whose vectors are searched
    (``THUMBSEARCH_MODEL``); every other setting is read from the environment, as the
    command line reads it. ``environ`` replaces ``os.environ`` for that. ``embedder``
    is an object with ``model_id``, ``dim``, ``input_size``, ``preprocess`` and ``embed``
    that stands in for the named model (images are embedded with it).

    Nothing is opened until the first query; close with ``close()`` or use ``with``. A
    lookup of a stored video never loads the model. One object serves one thread at a
    time (on SQLite its reads share one connection): give each thread its own. Errors are
    ``indexer.errors`` exceptions, all subclasses of ``ThumbsearchError``, each with a
    one-line message.

    >>> with Thumbsearch(home="demo-data") as corpus:            # doctest: +SKIP
    ...     for hit in corpus.similar("rAuzzsARkjE", k=4).results:
    ...         print(hit.rank, hit.video_id, f"{hit.score:.3f}", hit.title)
    """

    def __init__(self, home: str | Path | None = None, *, model: str | None = None,
                 environ: Mapping[str, str] | None = None,
                 embedder: Embedder | None = None) -> None:
        from indexer.settings import Settings

        env = dict(os.environ if environ is None else environ)
        if home is not None:
            env["THUMBSEARCH_HOME"] = str(home)
        if model is not None:
            env["THUMBSEARCH_MODEL"] = model
        self.settings: Settings = Settings.from_env(env)
        self._embedder = embedder
        self._service: Service | None = None

    @property
    def service(self) -> Service:
        """The underlying service (built on first use), for what this class does not cover."""
        if self._service is None:
            from indexer.service import FetcherOnFirstUse, build_service

            self._service = build_service(self.settings, embedder=self._embedder,
                                          fetcher=FetcherOnFirstUse(self.settings),
                                          lookups_only=True)
        return self._service

    def similar(self, video: str, k: int = 10, *, rerank: str = "none") -> SimilarResult:
        """The ``k`` nearest neighbours of a video id or YouTube URL.

        A stored video is answered from its stored vector; any other is embedded from
        its thumbnail (downloaded, nothing stored). The video itself is not in its answer.
        ``rerank`` re-orders the answer as ``similar --rerank`` does (``"aqe"``, ``"kr"``).
        """
        from search.ids import parse_video_ref
        from search.neighbours import similar_to_video

        return similar_to_video(self.service, parse_video_ref(video), k, parse_rerank(rerank))

    def similar_image(self, image: str | Path | bytes, k: int = 10, *,
                      rerank: str = "none") -> SimilarResult:
        """The ``k`` nearest neighbours of an image: a file path, an http(s) URL, or bytes."""
        from search.neighbours import similar_to_bytes, similar_to_image

        options = parse_rerank(rerank)
        if isinstance(image, bytes):
            return similar_to_bytes(self.service, image, "bytes", k, options)
        return similar_to_image(self.service, str(image), k, options)

    def similar_many(self, videos: Sequence[str], k: int = 10, *,
                     rerank: str = "none") -> list[SimilarResult | None]:
        """Neighbours of many stored videos (ids or URLs) in one search, in their order.

        None stands for a video that is not stored (nothing is downloaded or embedded).
        """
        from search.ids import parse_video_ref
        from search.neighbours import similar_to_videos

        return similar_to_videos(self.service, [parse_video_ref(v) for v in videos], k,
                                 parse_rerank(rerank))

    def duplicates(self, threshold: float = LIKELY_REUPLOAD, *,
                   across_channels: bool = False) -> list[DuplicateGroup]:
        """Groups of near-identical thumbnails (cosine at least ``threshold``), largest first;
        ``across_channels`` keeps only groups spanning two channels or more."""
        from search.duplicates import find_duplicates

        return find_duplicates(self.service, threshold, across_channels=across_channels)

    def watch(self, videos: Sequence[str] = (), images: Sequence[str | Path] = (), *,
              threshold: float | None = None, name: str | None = None) -> list[WatchAdded]:
        """Watch videos (ids or URLs) and images (paths or http(s) URLs), as ``thumbsearch
        watch add`` does: each is searched against the corpus once, and every later run that
        stores videos records its re-uploads (docs/watchlists.md)."""
        from search.watch import add_to_watchlist

        return add_to_watchlist(self.service, list(videos), [str(i) for i in images],
                                threshold=threshold, name=name)

    def watchlist(self) -> list[WatchItem]:
        """The watched items, oldest first, with their match counts."""
        from search.watch import list_watchlist

        return list_watchlist(self.service)

    def watch_matches(self, since: str | datetime | None = None,
                      names: Sequence[str] = ()) -> list[WatchMatch]:
        """Recorded re-uploads, newest first: since an age (``"1d"``) or a moment, of the
        items ``names`` (all by default)."""
        from search.watch import parse_since, watch_matches

        moment = parse_since(since) if isinstance(since, str) else since
        return watch_matches(self.service, since=moment, names=names)

    def unwatch(self, *names: str) -> int:
        """Stop watching ``names`` (all or none); how many recorded matches went with them."""
        from search.watch import remove_from_watchlist

        return remove_from_watchlist(self.service, names)

    def stats(self) -> dict[str, Any]:
        """The figures of ``thumbsearch stats --json``."""
        from search.stats import corpus_stats

        return corpus_stats(self.service)

    def close(self) -> None:
        """Release the database connections (the object can be opened again by a query)."""
        if self._service is not None:
            self._service.close()
            self._service = None

    def __enter__(self) -> Thumbsearch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
