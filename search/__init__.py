"""thumbsearch's query tool: top-k neighbours, statistics and the command line.

The names below are imported on first access, so the command line can start
without loading NumPy, SQLAlchemy or FAISS.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    "corpus_stats",
    "parse_video_ref",
    "similar_to_image",
    "similar_to_video",
    "similar_to_videos",
]

_HOMES = {
    "Neighbour": "search.neighbours",
    "SimilarResult": "search.neighbours",
    "corpus_stats": "search.stats",
    "parse_video_ref": "search.ids",
    "similar_to_image": "search.neighbours",
    "similar_to_video": "search.neighbours",
    "similar_to_videos": "search.neighbours",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
