"""Retrieval metrics over labelled vectors: recall@k, precision@k, mAP, approximate-index recall."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.bounds import quote
from indexer.errors import InputError
from search.rerank import NO_RERANK, Rerank

__all__ = [
    "INDEX_TYPES",
    "RetrievalScores",
    "approximate_recall",
    "average_precisions",
    "build_faiss_index",
    "query_rows",
    "rank_relevance",
    "reranked_relevance",
    "score_by_group",
    "score_vectors",
]

INDEX_TYPES = ("exact", "hnsw", "ivf")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
IVF_POINTS_PER_LIST = 39  # FAISS wants >= 39 training points per centroid
_CHUNK = 512  # queries scored at a time: 512 x n float64 scores


@dataclass(frozen=True)
class RetrievalScores:
    """Retrieval quality of one labelled set (means over its queries)."""

    queries: int
    labels: int
    distractors: int
    recall: dict[int, float]
    precision: dict[int, float]
    mAP: float


def _check(vectors: np.ndarray, labels: Sequence[str], ks: Sequence[int]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise InputError(f"vectors must be 2-d (n, dim), got shape {matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise InputError(f"{matrix.shape[0]} vectors but {len(labels)} labels")
    if not ks or any(int(k) < 1 for k in ks):
        raise InputError(f"every k must be a positive integer, got {list(ks)}")
    return matrix


def rank_relevance(vectors: np.ndarray, labels: Sequence[str],
                   queries: Sequence[int]) -> np.ndarray:
    """(len(queries), n - 1) bool: is the image at each rank relevant (ties pessimistic)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)[1].reshape(-1)
    rows = np.asarray(queries, dtype=np.int64)
    scores = matrix[rows] @ matrix.T
    relevant = codes[rows][:, None] == codes[None, :]
    scores[np.arange(len(rows)), rows] = -np.inf
    relevant[np.arange(len(rows)), rows] = False
    # lexsort: last key is primary. Highest score first, then irrelevant (False) first;
    # the query itself (-inf) always lands last and is dropped.
    order = np.lexsort((relevant, -scores), axis=-1)
    ranked: np.ndarray = np.take_along_axis(relevant, order, axis=-1)[:, :-1]
    return ranked


def reranked_relevance(vectors: np.ndarray, labels: Sequence[str], queries: Sequence[int],
                       rerank: Rerank) -> np.ndarray:
    """``rank_relevance`` of the ranking ``search.reranking`` makes over the set: the exact
    search is a matrix product (ties pessimistic, as there), row vectors the set's own."""
    from search.reranking import rerank_search

    matrix = np.asarray(vectors, dtype=np.float32)
    codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)[1].reshape(-1)
    rows = np.asarray(queries, dtype=np.int64)
    n = matrix.shape[0]

    def search(probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = probes.astype(np.float64) @ matrix.T.astype(np.float64)
        relevant = codes[rows][:, None] == codes[None, :]
        order = np.lexsort((relevant, -scores), axis=-1)[:, :k]
        return np.take_along_axis(scores, order, axis=-1), order

    def row_vectors(wanted: list[int]) -> dict[int, np.ndarray]:
        return {r: matrix[r] for r in wanted}

    answers = rerank_search(search, row_vectors, matrix[rows], n - 1, rows.tolist(), rerank)
    ranked = np.zeros((len(rows), n - 1), dtype=bool)
    for i, answer in enumerate(answers):
        found = np.fromiter((r for r, _ in answer), dtype=np.int64, count=len(answer))
        ranked[i, :len(found)] = codes[found] == codes[rows[i]]
    return ranked


def query_rows(labels: Sequence[str]) -> list[int]:
    """Positions of the queries: images whose label has at least one other image."""
    counts = Counter(labels)
    return [i for i, label in enumerate(labels) if counts[label] > 1]


def _chunks(matrix: np.ndarray, labels: Sequence[str], rows: Sequence[int],
            rerank: Rerank = NO_RERANK) -> Iterator[tuple[list[int], np.ndarray]]:
    for start in range(0, len(rows), _CHUNK):
        chunk = list(rows[start:start + _CHUNK])
        yield chunk, (reranked_relevance(matrix, labels, chunk, rerank) if rerank.active
                      else rank_relevance(matrix, labels, chunk))


def _ap(ranked: np.ndarray) -> np.ndarray:
    found = np.cumsum(ranked, axis=1)
    ranks = np.arange(1, ranked.shape[1] + 1, dtype=np.float64)
    precision_at_hit = np.where(ranked, found / ranks, 0.0)
    result: np.ndarray = precision_at_hit.sum(axis=1) / ranked.sum(axis=1)
    return result


def average_precisions(vectors: np.ndarray, labels: Sequence[str],
                       rerank: Rerank = NO_RERANK) -> dict[int, float]:
    """Average precision of every query, by its position (the means of score_vectors' mAP)."""
    matrix = _check(vectors, labels, (1,))
    out: dict[int, float] = {}
    for chunk, ranked in _chunks(matrix, labels, query_rows(labels), rerank):
        out.update(zip(chunk, _ap(ranked).tolist(), strict=True))
    return out


def score_vectors(vectors: np.ndarray, labels: Sequence[str], ks: Sequence[int] = (1, 5, 10),
                  rerank: Rerank = NO_RERANK) -> RetrievalScores:
    """Recall@k, precision@k and mAP of exact cosine ranking (re-ranked by ``rerank``).

    Definitions (pure numpy):

    - Every image whose label has at least one other image is a *query*; an image
      alone in its label is a *distractor* (ranked against, never a query).
    - For a query, every other image is ranked by inner product (cosine, as the
      vectors are L2-normalised) with the query, highest first; the query itself is
      excluded. Its *relevant* images are the others with the same label.
    - Ties are broken pessimistically and deterministically: among equal scores,
      irrelevant images rank ahead of relevant ones. The result does not depend on
      the input order, and a degenerate embedder (all scores equal) scores as
      badly as it deserves instead of winning on file order.
    - recall@k: 1 if at least one relevant image is in the top k, else 0.
    - precision@k: relevant images in the top k, divided by k (k larger than the
      n - 1 ranked images still divides by k).
    - AP: the mean, over the query's relevant images, of the precision at each
      one's rank; mAP is its mean over queries. Every figure is a mean over queries.
    """
    matrix = _check(vectors, labels, ks)
    rows = query_rows(labels)
    if not rows:
        raise InputError("no label has two or more images, so there is nothing to query")
    n = matrix.shape[0]
    ks = sorted({int(k) for k in ks})
    hits_at = dict.fromkeys(ks, 0)
    precision_sum = dict.fromkeys(ks, 0.0)
    ap_sum = 0.0
    for _, ranked in _chunks(matrix, labels, rows, rerank):
        found = np.cumsum(ranked, axis=1)  # relevant images within the top r + 1
        for k in ks:
            at_k = found[:, min(k, n - 1) - 1]
            hits_at[k] += int(np.count_nonzero(at_k))
            precision_sum[k] += float(np.sum(at_k / k))
        ap_sum += float(np.sum(_ap(ranked)))
    q = len(rows)
    counts = Counter(labels)
    return RetrievalScores(
        queries=q,
        labels=sum(1 for c in counts.values() if c > 1),
        distractors=sum(1 for c in counts.values() if c == 1),
        recall={k: hits_at[k] / q for k in ks},
        precision={k: precision_sum[k] / q for k in ks},
        mAP=ap_sum / q,
    )


def score_by_group(vectors: np.ndarray, labels: Sequence[str], groups: Sequence[str | None],
                   ks: Sequence[int] = (1, 5, 10),
                   rerank: Rerank = NO_RERANK) -> dict[str, RetrievalScores]:
    """score_vectors' recall@k, precision@k and mAP with the queries split by group (each
    query ranked against the whole set, re-ranked by ``rerank``); images whose group is
    None are not grouped."""
    matrix = _check(vectors, labels, ks)
    if len(groups) != len(labels):
        raise InputError(f"{len(labels)} labels but {len(groups)} groups")
    rows = [row for row in query_rows(labels) if groups[row] is not None]
    n = matrix.shape[0]
    ks = sorted({int(k) for k in ks})
    hits: dict[str, dict[int, int]] = {}
    precision: dict[str, dict[int, float]] = {}
    ap: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for chunk, ranked in _chunks(matrix, labels, rows, rerank):
        found = np.cumsum(ranked, axis=1)
        aps = _ap(ranked)
        for position, row in enumerate(chunk):
            group = str(groups[row])
            counts[group] += 1
            ap[group] = ap.get(group, 0.0) + float(aps[position])
            for k in ks:
                at_k = int(found[position, min(k, n - 1) - 1])
                hits.setdefault(group, dict.fromkeys(ks, 0))[k] += int(at_k > 0)
                precision.setdefault(group, dict.fromkeys(ks, 0.0))[k] += at_k / k
    return {group: RetrievalScores(
        queries=q, labels=len({labels[r] for r in rows if groups[r] == group}), distractors=0,
        recall={k: hits[group][k] / q for k in ks},
        precision={k: precision[group][k] / q for k in ks}, mAP=ap[group] / q)
        for group, q in sorted(counts.items())}


def build_faiss_index(vectors: np.ndarray, index_type: str) -> Any:
    """An in-memory inner-product FAISS index of the given type over the vectors (added)."""
    import faiss

    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = matrix.shape
    index: Any
    if index_type == "exact":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif index_type == "ivf":
        nlist = max(1, min(int(math.sqrt(n)), n // IVF_POINTS_PER_LIST))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(matrix)
        index.nprobe = max(1, nlist // 8)
    else:
        raise InputError(f"unknown index type {quote(index_type)}; "
                         f"use one of {', '.join(INDEX_TYPES)}")
    index.add(matrix)
    return index


def _neighbours(index: Any, matrix: np.ndarray, k: int) -> list[set[int]]:
    # k + 1 to leave room for the query itself; if it is not returned (a duplicate
    # vector outranked it), the last result is dropped instead.
    _, ids = index.search(matrix, min(k + 1, matrix.shape[0]))
    out = []
    for i, row in enumerate(ids.tolist()):
        found = [j for j in row if j >= 0 and j != i]
        out.append(set(found[:k]))
    return out


def approximate_recall(vectors: np.ndarray, k: int, index_type: str) -> float:
    """Mean share of each vector's exact top-k neighbours (not itself) the index also finds."""
    if k < 1:
        raise InputError(f"k must be a positive integer, got {k}")
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise InputError("approximate recall needs at least two vectors")
    if index_type == "exact":
        return 1.0
    exact = _neighbours(build_faiss_index(matrix, "exact"), matrix, k)
    approx = _neighbours(build_faiss_index(matrix, index_type), matrix, k)
    total = sum(len(e & a) / len(e) for e, a in zip(exact, approx, strict=True) if e)
    return total / len(exact)
