"""Corpus statistics: counts, model, index, sizes, health and where the data lives."""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from indexer.service import Service
from indexer.store.reads import sqlite_file
from indexer.vectors.index import VectorIndex
from indexer.youtube.quota import PACIFIC

__all__ = ["corpus_stats", "folder_bytes", "quota_reset"]


def quota_reset(day: str) -> str:
    """When the quota of Pacific ``day`` (ISO date) resets: the next Pacific midnight, ISO 8601."""
    following = date.fromisoformat(day) + timedelta(days=1)
    return datetime.combine(following, time(0), tzinfo=PACIFIC).isoformat()


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def _database_bytes(url: str) -> int | None:
    """The SQLite file's size with its journal files; None for a server database."""
    path = sqlite_file(url)
    if path is None:
        return None
    sizes = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    return sum(p.stat().st_size for p in sizes if p.is_file())


def _health(counts: dict[str, int], index_size: int, model: str) -> str:
    """"ok", or what is wrong as far as the counts tell (``thumbsearch doctor`` checks all)."""
    problems = []
    if counts["videos"] > counts["vectors"]:
        problems.append(f"{counts['videos'] - counts['vectors']} videos have no {model} vector")
    if index_size != counts["vectors"]:
        problems.append(f"the index holds {index_size} vectors, the database "
                        f"{counts['vectors']}")
    return "ok" if not problems else "; ".join(problems) + ": run `thumbsearch doctor`"


def corpus_stats(service: Service) -> dict[str, Any]:
    """The documented shape of ``stats --json``."""
    spec = service.spec
    settings = service.settings
    if service.store.exists():
        counts = service.store.counts(spec.model_id)
        index = asdict(service.index().info())
    else:
        counts = {"videos": 0, "vectors": 0, "queries": 0}
        index = asdict(VectorIndex(settings.index_dir, spec.model_id, spec.dim).info())
    quota = service.ledger.summary()
    quota["resets"] = quota_reset(quota["day"])
    disk = {"database": _database_bytes(settings.database_url),
            "index": folder_bytes(settings.index_dir),
            "thumbnails": folder_bytes(settings.thumbnail_cache_dir)}
    return {**counts, "model": spec.model_id, "dim": spec.dim, "index": index,
            "home": str(settings.home), "quota": quota, "disk": disk,
            "memory": {"index": index["memory_bytes"]},
            "health": _health(counts, index["size"], spec.model_id)}
