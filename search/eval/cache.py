"""Embeddings of evaluation images cached by file content hash and model, outside the corpus
(one SQLite file per model under ``$THUMBSEARCH_HOME/cache/eval/``; safe to delete)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.errors import StoreError
from indexer.store.reads import in_chunks

__all__ = ["EmbeddingCache"]


class EmbeddingCache:
    """sha256 of an image's bytes -> its L2-normalised float32 vector, for one model."""

    def __init__(self, directory: Path, model_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
        self.path = directory / f"{safe}.sqlite3"
        self.model_id = model_id
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (sha256 TEXT PRIMARY KEY, "
                             "model TEXT NOT NULL, vector BLOB NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the evaluation cache {self.path}: {exc}") from exc

    def get_many(self, digests: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``digests``."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, np.ndarray] = {}
        try:
            for chunk in in_chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT sha256, vector FROM vectors WHERE model = ? AND sha256 IN ({marks})",
                    [self.model_id, *chunk])
                for digest, blob in rows:
                    out[digest] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the evaluation cache {self.path}: {exc}") from exc
        return out

    def put_many(self, pairs: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors by digest (one transaction)."""
        rows = [(d, self.model_id, np.ascontiguousarray(v, dtype="<f4").tobytes())
                for d, v in pairs]
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (sha256, model, vector) VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the evaluation cache {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the database file."""
        self._db.close()
