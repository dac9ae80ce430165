"""The FAISS index: a snapshot on disk plus a watermark, derived from the store.

FAISS holds L2-normalised float32 vectors and int64 embedding row ids only, in an
inner-product index, so scores are cosine similarities. The snapshot records the
model id, dimension and the last row id it contains (the watermark); opening it
replays the store's rows past the watermark, so a crash between the database
commit and the snapshot save loses nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ModelMismatchError, VectorIndexError, disk_full
from indexer.store import Store

__all__ = ["IndexInfo", "VectorIndex", "l2_normalise"]

INDEX_TYPE = "flat-ip"


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32 (n, d)); zero rows stay zero."""
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: np.ndarray = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


@dataclass(frozen=True)
class IndexInfo:
    """What stats report about an open index."""

    type: str
    model: str
    dim: int
    size: int
    watermark: int
    snapshot: str
    snapshot_bytes: int


def _atomic_write(path: Path, data: bytes) -> None:
    # Temporary file in the same directory, fsync, rename: a reader sees old or new, never half.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VectorIndex:
    """An inner-product FAISS index over one model's vectors, kept in step with the store."""

    def __init__(self, directory: Path, model: str, dim: int) -> None:
        import faiss

        self.directory = directory
        self.model = model
        self.dim = dim
        self.watermark = 0
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def snapshot_path(self) -> Path:
        """File holding the serialised FAISS index."""
        return self.directory / f"{self.model}.faiss"

    @property
    def meta_path(self) -> Path:
        """File holding the snapshot's model, dimension and watermark."""
        return self.directory / f"{self.model}.json"

    @property
    def size(self) -> int:
        """Number of vectors in the index."""
        return int(self._index.ntotal)

    @classmethod
    def open(cls, directory: Path, model: str, dim: int, store: Store) -> VectorIndex:
        """Load the snapshot (if any) and replay the store's rows past its watermark."""
        index = cls(directory, model, dim)
        index._load_snapshot()
        index.catch_up(store)
        return index

    def _load_snapshot(self) -> None:
        import faiss

        if not self.meta_path.exists() or not self.snapshot_path.exists():
            return
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise VectorIndexError(f"index metadata {self.meta_path} is unreadable: {exc}; "
                                   "delete it to rebuild the index from the database") from exc
        if meta.get("model") != self.model or meta.get("dim") != self.dim:
            raise ModelMismatchError(
                f"index {self.snapshot_path} was built with model {meta.get('model')!r} "
                f"({meta.get('dim')}-d), not {self.model!r} ({self.dim}-d); "
                "delete it to rebuild the index from the database")
        try:
            loaded = faiss.read_index(str(self.snapshot_path))
        except RuntimeError:
            # A torn or truncated snapshot: the database still has every vector.
            return
        if loaded.d != self.dim or loaded.ntotal != meta.get("size"):
            return
        self._index = loaded
        self.watermark = int(meta.get("watermark", 0))

    def catch_up(self, store: Store) -> int:
        """Add the store's rows past the watermark; return how many were added."""
        added = 0
        for ids, vectors in store.iter_vectors(self.model, after=self.watermark):
            self.add(ids, vectors)
            added += len(ids)
        return added

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add normalised vectors under their row ids (ids above the watermark only)."""
        ids = np.asarray(ids, dtype=np.int64)
        fresh = ids > self.watermark
        if not fresh.any():
            return
        vectors = l2_normalise(vectors)[fresh]
        if vectors.shape[1] != self.dim:
            raise VectorIndexError(f"vector of dimension {vectors.shape[1]}, index has {self.dim}")
        self._index.add_with_ids(np.ascontiguousarray(vectors), ids[fresh])
        self.watermark = max(self.watermark, int(ids[fresh].max()))

    def remove(self, ids: np.ndarray) -> int:
        """Drop vectors by row id (deleted rows); return how many were in the index.

        The watermark stays: row ids are never reused, so replay cannot bring them back.
        Call ``save()`` afterwards to make the removal survive a restart.
        """
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if not wanted.size:
            return 0
        try:
            removed = int(self._index.remove_ids(wanted))
        except RuntimeError as exc:
            raise VectorIndexError(f"cannot remove vectors from the index: {exc}") from exc
        return removed

    def ids(self) -> np.ndarray:
        """The row ids held, int64 (n,), in insertion order (for consistency checks)."""
        import faiss

        return np.asarray(faiss.vector_to_array(self._index.id_map), dtype=np.int64)

    def vector(self, row_id: int) -> np.ndarray:
        """The stored (normalised) vector of one row id, float32 (dim,)."""
        try:
            out: np.ndarray = np.asarray(self._index.reconstruct(int(row_id)), np.float32)
        except RuntimeError as exc:
            raise VectorIndexError(f"row {row_id} is not in the index") from exc
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores float32 (n, k), row ids int64 (n, k)); missing slots have id -1."""
        if self.size == 0:
            n = len(queries)
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        k = min(k, self.size)
        scores, ids = self._index.search(np.ascontiguousarray(l2_normalise(queries)), k)
        return scores, ids

    def save(self) -> None:
        """Write the snapshot and its metadata atomically."""
        import faiss

        try:
            data = faiss.serialize_index(self._index).tobytes()
            _atomic_write(self.snapshot_path, data)
            meta = {"model": self.model, "dim": self.dim, "type": INDEX_TYPE,
                    "size": self.size, "watermark": self.watermark}
            _atomic_write(self.meta_path, json.dumps(meta, indent=1).encode())
        except OSError as exc:
            full = disk_full(exc, "saving the index", self.directory)
            if full is not None:
                raise full from exc
            raise VectorIndexError(f"cannot save the index to {self.directory}: {exc}") from exc

    def info(self) -> IndexInfo:
        """Type, size and where the snapshot lives."""
        path = self.snapshot_path
        return IndexInfo(type=INDEX_TYPE, model=self.model, dim=self.dim, size=self.size,
                         watermark=self.watermark, snapshot=str(path),
                         snapshot_bytes=path.stat().st_size if path.exists() else 0)
