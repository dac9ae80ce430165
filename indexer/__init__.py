"""thumbsearch's ingest worker: everything that writes.

Settings are read once (``Settings.from_env``), ``build_service`` wires the
store, index, image fetcher, YouTube client and model, and ``ingest_queries``
and ``add_paths`` run the stages: search or files -> fetch and decode ->
embed -> database rows, then the index.

The names below are imported on first access, so importing one light submodule
(``indexer.errors``, ``indexer.settings``) does not pull in SQLAlchemy, NumPy or FAISS.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.errors import ThumbsearchError
    from indexer.idlist_ingest import add_video_ids
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
    "add_video_ids",
    "build_service",
    "ingest_queries",
]

_HOMES = {
    "Failure": "indexer.records",
    "IngestSummary": "indexer.summary",
    "Service": "indexer.service",
    "Settings": "indexer.settings",
    "Store": "indexer.store",
    "StoredVideo": "indexer.records",
    "ThumbsearchError": "indexer.errors",
    "VectorIndex": "indexer.vector_index",
    "VideoMeta": "indexer.records",
    "add_paths": "indexer.local",
    "add_video_ids": "indexer.idlist_ingest",
    "build_service": "indexer.service",
    "ingest_queries": "indexer.ingest",
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
