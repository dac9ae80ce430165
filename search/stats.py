"""Corpus statistics: counts, model, index and where the data lives."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from indexer.service import Service
from indexer.vectors.index import VectorIndex

__all__ = ["corpus_stats"]


def corpus_stats(service: Service) -> dict[str, Any]:
    """The documented shape of ``stats --json``."""
    spec = service.spec
    if service.store.exists():
        counts = service.store.counts(spec.model_id)
        index = asdict(service.index().info())
    else:
        counts = {"videos": 0, "vectors": 0, "queries": 0}
        index = asdict(VectorIndex(service.settings.index_dir, spec.model_id, spec.dim).info())
    return {**counts, "model": spec.model_id, "dim": spec.dim, "index": index,
            "home": str(service.settings.home), "quota": service.ledger.summary()}
