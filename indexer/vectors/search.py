"""Searching what an index holds: the exact tail and the snapshot, whose approximate
candidates are re-scored from codes in memory (or, in snapshots without them, re-ranked by
exact cosines of vectors re-read from the database)."""

from __future__ import annotations

from typing import Any

import numpy as np

from indexer.errors import VectorIndexError
from indexer.store.reads import Reads
from indexer.vectors.exact import l2_normalise, rerank
from indexer.vectors.held import Held, index_ids
from indexer.vectors.types import EXACT_DEPTH, refine_count, refine_params, skipping

__all__ = ["FEW_QUERIES", "live_params", "rerank_stored", "rescored", "search",
           "vector"]

FEW_QUERIES = 4  # searches of this many queries or fewer run on one thread


def rerank_stored(reads: Reads | None, queries: np.ndarray, candidates: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosines of candidate rows re-read from the database, best k a query (rows
    deleted there drop out)."""
    if reads is None:
        return rerank(queries, candidates, np.zeros(0, np.int64), np.zeros((0, 0)), k)
    rows, vectors = reads.vectors_for_rows(np.unique(candidates).tolist())
    if rows.size:
        vectors = l2_normalise(vectors)
    return rerank(queries, candidates, rows, vectors, k)


def _read(reads: Reads, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, unit vectors) of the valid ids among ``ids`` still in the database."""
    wanted = np.unique(ids[ids >= 0])
    if not wanted.size:
        return wanted, np.zeros((0, 0), np.float32)
    rows, vectors = reads.vectors_for_rows(wanted.tolist())
    return rows, (l2_normalise(vectors) if rows.size else vectors)


def live_params(held: Held) -> Any:
    """The coarse search parameters that pass over a refined snapshot's deleted rows (None
    when it has none), built once per deletion count: a deletion costs a search one
    membership test a scanned code, not a rebuild of the snapshot."""
    count = int(held.deleted.size)
    if not count:
        return None
    cached = held.live_params
    if cached is not None and cached[0] == count:
        return cached[1]
    positions = np.flatnonzero(np.isin(index_ids(held.base), held.deleted))
    params = skipping(held.base, positions)
    held.live_params = (count, params)
    return params


def rescored(held: Held, reads: Reads | None, queries: np.ndarray,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of a refined snapshot: its candidates re-scored from the codes it holds, then
    the best ``EXACT_DEPTH`` * k rows alone read from the database and ranked by their exact
    cosines (a row deleted there drops out); without a database the scores are the codes'
    cosines (within about 1e-3 of exact)."""
    depth = min(EXACT_DEPTH * k, held.snapshot_size)
    params = refine_params(k, held.build.params, depth, live_params(held))
    distances, ranked = held.base.search(queries, depth, params=params)
    if reads is None:  # squared L2 between unit vectors is 2 - 2 cos
        scores = np.where(ranked >= 0, 1.0 - distances / 2.0, -np.inf).astype(np.float32)
        return scores[:, :k], ranked[:, :k]
    rows, vectors = _read(reads, ranked)
    return rerank(queries, ranked, rows, vectors, k)


def _parts(held: Held, reads: Reads | None, queries: np.ndarray,
           k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scores, ids) of the tail and of the snapshot, each exact, to be merged."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if held.tail_size:
        parts.append(held.tail.search(queries, min(k, held.tail_size)))
    if held.snapshot_size and held.exact:
        parts.append(held.base.search(queries, min(k, held.snapshot_size)))
    elif held.snapshot_size and held.refined:
        parts.append(rescored(held, reads, queries, k))
    elif held.snapshot_size:
        wanted = refine_count(k, held.build.params)
        _, candidates = held.base.search(queries, min(wanted, held.snapshot_size))
        parts.append(rerank_stored(reads, queries, candidates, k))
    return parts


def search(held: Held, reads: Reads | None, queries: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores float32 (n, k), row ids int64 (n, k)); missing slots have id -1."""
    import faiss

    queries = np.ascontiguousarray(l2_normalise(queries))
    n = len(queries)
    k = min(k, held.size)
    if k <= 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    threads = faiss.omp_get_max_threads()
    if n <= FEW_QUERIES:  # a lookup or two: starting threads costs more than it saves
        faiss.omp_set_num_threads(1)
    try:
        parts = _parts(held, reads, queries, k)
    finally:
        faiss.omp_set_num_threads(threads)
    scores = np.concatenate([s for s, _ in parts], axis=1)
    ids = np.concatenate([i for _, i in parts], axis=1)
    scores = np.where(ids >= 0, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top_ids = np.take_along_axis(ids, order, axis=1)
    top_scores = np.take_along_axis(scores, order, axis=1)
    return np.where(top_ids >= 0, top_scores, 0.0).astype(np.float32), top_ids


def vector(held: Held, row_id: int) -> np.ndarray:
    """The held (normalised) vector of one row id, float32 (dim,).

    Exact for the tail and flat snapshots; an approximate snapshot holds codes, so
    its vectors come back only approximately (PCA and quantisation).
    """
    for part in (held.tail, held.base):
        if part is None:
            continue
        try:
            if part is held.base and not held.exact:
                part.make_direct_map() if hasattr(part, "make_direct_map") else None
            out: np.ndarray = np.asarray(part.reconstruct(int(row_id)), np.float32)
            return out
        except RuntimeError:
            continue
    raise VectorIndexError(f"row {row_id} is not in the index")
