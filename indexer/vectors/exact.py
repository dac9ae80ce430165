"""Exact cosine scores of unit vectors: L2 normalisation, and re-ranking candidates by it."""

from __future__ import annotations

import numpy as np

__all__ = ["l2_normalise", "rerank"]


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32 (n, d)); zero rows stay zero."""
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: np.ndarray = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


def rerank(queries: np.ndarray, candidates: np.ndarray, rows: np.ndarray, vectors: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best ``k`` candidates by exact cosine.

    ``queries``: unit float32 (n, d); ``candidates``: row ids int64 (n, m), -1 for none;
    ``rows`` and ``vectors``: the unit vectors read for them (int64 (r,), float32 (r, d),
    in any order), where a candidate missing (a deleted row) drops out. Returns (scores
    float32 (n, k), row ids int64 (n, k)), best first; empty slots score -inf under id -1.
    """
    scores = np.full((len(queries), k), -np.inf, np.float32)
    ids = np.full((len(queries), k), -1, np.int64)
    if not len(rows):
        return scores, ids
    position = {int(r): n for n, r in enumerate(rows)}
    for q, (query, cands) in enumerate(zip(queries, candidates, strict=True)):
        known = np.asarray([c for c in dict.fromkeys(cands.tolist()) if c in position],
                           np.int64)
        if not known.size:
            continue
        found = vectors[[position[int(c)] for c in known]] @ query
        order = np.argsort(-found, kind="stable")[:k]
        scores[q, :order.size], ids[q, :order.size] = found[order], known[order]
    return scores, ids
