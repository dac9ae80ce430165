"""thumbsearch's query side: ``Thumbsearch`` (the Python API, docs/python-api.md), top-k
neighbours, statistics. Names load on first access, so importing this package is cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from indexer.lazy import lazy_names

if TYPE_CHECKING:
    from search.client import Thumbsearch
    from search.ids import parse_video_ref
    from search.neighbours import (
        Neighbour,
        SimilarResult,
        similar_to_image,
        similar_to_video,
        similar_to_videos,
    )
    from search.stats import corpus_stats

__all__ = [
    "Neighbour",
    "SimilarResult",
    "Thumbsearch",
    "corpus_stats",
    "parse_video_ref",
    "similar_to_image",
    "similar_to_video",
    "similar_to_videos",
]

_HOMES = {
    "Neighbour": "search.neighbours",
    "SimilarResult": "search.neighbours",
    "Thumbsearch": "search.client",
    "corpus_stats": "search.stats",
    "parse_video_ref": "search.ids",
    "similar_to_image": "search.neighbours",
    "similar_to_video": "search.neighbours",
    "similar_to_videos": "search.neighbours",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), __all__)
del lazy_names  # the package exports only its own names
