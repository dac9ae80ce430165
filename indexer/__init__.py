"""thumbsearch's ingest worker: everything that writes.

Settings are read once (``Settings.from_env``), ``build_service`` wires the
store, index, image fetcher, YouTube client and model, and ``ingest_queries``
and ``add_paths`` run the stages: search or files -> fetch and decode ->
embed -> database rows, then the index.
"""

from __future__ import annotations

from indexer.errors import ThumbsearchError
from indexer.ingest import ingest_queries
from indexer.local import add_paths
from indexer.records import Failure, StoredVideo, VideoMeta
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store import Store
from indexer.summary import IngestSummary
from indexer.vector_index import VectorIndex

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
    "build_service",
    "ingest_queries",
]
