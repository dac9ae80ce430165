"""thumbsearch's query tool: top-k neighbours, statistics and the command line."""

from __future__ import annotations

from search.ids import parse_video_ref
from search.neighbours import Neighbour, SimilarResult, similar_to_image, similar_to_video
from search.stats import corpus_stats

__all__ = [
    "Neighbour",
    "SimilarResult",
    "corpus_stats",
    "parse_video_ref",
    "similar_to_image",
    "similar_to_video",
]
