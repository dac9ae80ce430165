"""thumbsearch's ingest worker: everything that writes (see docs/architecture.md). Names
below load on first access, so a light submodule never pulls in NumPy or FAISS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from indexer.lazy import lazy_names

if TYPE_CHECKING:
    from indexer.errors import ThumbsearchError
    from indexer.ingest.idlist import add_video_ids
    from indexer.ingest.local import add_paths
    from indexer.ingest.queries import ingest_queries
    from indexer.ingest.summary import IngestSummary
    from indexer.records import Failure, StoredVideo, VideoMeta
    from indexer.service import Service, build_service
    from indexer.settings import Settings
    from indexer.store.metadata import Store
    from indexer.vectors.index import VectorIndex

__all__ = [
    "Failure",
    "IngestSummary",
    "Service",
    "Settings",
    "Store",
    "StoredVideo",
    "ThumbsearchError",
    "VectorIndex",
    "VideoMeta",
    "add_paths",
    "add_video_ids",
    "build_service",
    "ingest_queries",
]

_HOMES = {
    "Failure": "indexer.records",
    "IngestSummary": "indexer.ingest.summary",
    "Service": "indexer.service",
    "Settings": "indexer.settings",
    "Store": "indexer.store.metadata",
    "StoredVideo": "indexer.records",
    "ThumbsearchError": "indexer.errors",
    "VectorIndex": "indexer.vectors.index",
    "VideoMeta": "indexer.records",
    "add_paths": "indexer.ingest.local",
    "add_video_ids": "indexer.ingest.idlist",
    "build_service": "indexer.service",
    "ingest_queries": "indexer.ingest.queries",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals(), __all__)
del lazy_names  # the package exports only its own names
