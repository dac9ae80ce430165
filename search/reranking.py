"""Re-ranking after the search (options in ``search.rerank``): alpha query expansion and
bounded k-reciprocal re-ranking, pure numpy over a search function and a row-vector reader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from search.rerank import Rerank

if TYPE_CHECKING:
    from indexer.service import Corpus

__all__ = ["expand_queries", "reciprocal_order", "rerank_search", "reranked_pairs"]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    out: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return out


def expand_queries(queries: np.ndarray, neighbours: np.ndarray, scores: np.ndarray,
                   alpha: float) -> np.ndarray:
    """alpha-QE: (q, d) queries, (q, n, d) neighbour vectors, (q, n) their similarities ->
    (q, d) normalised ``query + sum(max(s, 0)^alpha * neighbour)``."""
    weights = np.power(np.clip(scores, 0.0, 1.0), alpha)[..., None]
    expanded = queries.astype(np.float32) + (weights * neighbours).sum(axis=1)
    result: np.ndarray = _normalise(expanded).astype(np.float32)
    return result


def _top(gram: np.ndarray, count: int) -> np.ndarray:
    """(m, m) similarities -> (m, count) positions of each row's most similar, itself first."""
    count = min(count, gram.shape[0])
    ties = gram + np.eye(gram.shape[0]) * 4.0  # each node is its own nearest neighbour
    part = np.argpartition(-ties, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(ties, part, axis=1), axis=1, kind="stable")
    out: np.ndarray = np.take_along_axis(part, order, axis=1)
    return out


def reciprocal_order(query: np.ndarray, shortlist: np.ndarray,
                     options: Rerank) -> tuple[np.ndarray, np.ndarray]:
    """k-reciprocal re-ranking of one query's shortlist.

    ``query`` (d,) and ``shortlist`` (m, d), both normalised, the shortlist in the first
    search's order. Returns (order (m,) of shortlist positions, best first; the final
    distances (m,) in that order). Everything is computed among the m + 1 nodes only:
    O(m^2 d) for the similarities, O(m^2) for the rest.
    """
    m = shortlist.shape[0]
    if m < 2:
        return np.arange(m), np.zeros(m)
    nodes = np.vstack([query[None, :], shortlist]).astype(np.float32, copy=False)
    gram = np.clip((nodes @ nodes.T).astype(np.float64), -1.0, 1.0)
    distance = 1.0 - gram  # cosine distance, 0..2
    k1 = min(options.k1, m)
    near = _top(gram, k1 + 1)  # (m + 1, k1 + 1), each row starting with itself
    member = np.zeros_like(gram, dtype=bool)
    np.put_along_axis(member, near, True, axis=1)
    reciprocal = member & member.T  # j in N(i, k1) and i in N(j, k1)
    half = max(1, round(k1 / 2))
    near_half = _top(gram, half + 1)
    member_half = np.zeros_like(member)
    np.put_along_axis(member_half, near_half, True, axis=1)
    reciprocal_half = member_half & member_half.T
    # R*(i): R(i) grown by each R(j, k1 / 2), j in R(i), that shares 2/3 of itself with R(i)
    shared = reciprocal.astype(np.int32) @ reciprocal_half.T.astype(np.int32)
    taken = reciprocal & (shared >= 2.0 / 3.0 * reciprocal_half.sum(axis=1)[None, :])
    expanded = reciprocal | (taken.astype(np.int32) @ reciprocal_half.astype(np.int32) > 0)
    weights = np.where(expanded, np.exp(-distance), 0.0)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    if options.k2 > 1:  # local query expansion: each description averaged over its k2 nearest
        weights = weights[_top(gram, min(options.k2, m + 1))].mean(axis=1)
    overlap = np.minimum(weights[0][None, :], weights[1:]).sum(axis=1)
    union = np.maximum(weights[0][None, :], weights[1:]).sum(axis=1)
    jaccard = 1.0 - overlap / np.maximum(union, 1e-12)
    final = options.lam * distance[0, 1:] + (1.0 - options.lam) * jaccard
    order = np.argsort(final, kind="stable")
    return order, final[order]


Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
RowVectors = Callable[[list[int]], dict[int, np.ndarray]]


def _hits(scores: np.ndarray, ids: np.ndarray, exclude: int | None,
          count: int) -> list[tuple[int, float]]:
    return [(int(r), float(s)) for r, s in zip(ids, scores, strict=True)
            if r >= 0 and r != exclude][:count]


class _Rows:
    """Vectors of row ids, each read once, in batches (rows gone from the store drop out)."""

    def __init__(self, read: RowVectors) -> None:
        self._read = read
        self.known: dict[int, np.ndarray] = {}
        self.missing: set[int] = set()
        self.reads = 0  # rows asked for

    def fetch(self, rows: Sequence[int]) -> None:
        wanted = [r for r in dict.fromkeys(rows) if r not in self.known and r not in self.missing]
        if wanted:
            self.reads += len(wanted)
            found = self._read(wanted)
            for row in wanted:
                vector = found.get(row)
                if vector is None:
                    self.missing.add(row)
                else:
                    self.known[row] = _normalise(np.asarray(vector, np.float32).reshape(-1))


def rerank_search(search: Search, vectors: RowVectors, queries: np.ndarray, k: int,
                  exclude: Sequence[int | None], options: Rerank) -> list[list[tuple[int, float]]]:
    """Top-k (row id, cosine to the query) of each query (q, d), re-ranked by ``options``.

    ``search(queries, k)`` is the plain search (scores, ids with -1 for empty slots) and
    ``vectors(rows)`` reads row vectors by id; ``exclude[i]`` is query i's own row. The
    order follows the re-ranking; the scores stay each result's cosine with the query, so
    thresholds keep their meaning. Rows read: the top n of each query for alpha-QE, the top
    k of the shortlist for k-reciprocal, and results whose cosine is not yet known.
    """
    queries = _normalise(np.asarray(queries, np.float32))
    extra = 1 if any(e is not None for e in exclude) else 0
    size = options.shortlist(k)
    scores, ids = search(queries, size + extra)
    lists = [_hits(scores[i], ids[i], exclude[i], size) for i in range(len(queries))]
    if not options.active:
        return [hits[:k] for hits in lists]
    rows = _Rows(vectors)
    cosine = [dict(hits) for hits in lists]
    probes = queries
    if options.n:
        rows.fetch([r for hits in lists for r, _ in hits[:options.n]])
        near = np.zeros((len(queries), options.n, queries.shape[1]), np.float32)
        weight = np.zeros((len(queries), options.n), np.float32)
        for i, hits in enumerate(lists):
            used = [(r, s) for r, s in hits if r in rows.known][:options.n]
            for j, (r, s) in enumerate(used):
                near[i, j], weight[i, j] = rows.known[r], s
        probes = expand_queries(queries, near, weight, options.alpha)
        scores, ids = search(probes, size + extra)
        lists = [_hits(scores[i], ids[i], exclude[i], size) for i in range(len(queries))]
    if options.k:
        rows.fetch([r for hits in lists for r, _ in hits[:options.k]])
        for i, hits in enumerate(lists):
            head = [h for h in hits[:options.k] if h[0] in rows.known]
            if len(head) < 2:
                continue
            order, _ = reciprocal_order(probes[i], np.stack([rows.known[r] for r, _ in head]),
                                        options)
            lists[i] = [head[p] for p in order] + hits[options.k:]
    rows.fetch([r for i, hits in enumerate(lists) for r, _ in hits[:k] if r not in cosine[i]])
    out = []
    for i, hits in enumerate(lists):
        answer = []
        for r, _ in hits:
            if r in cosine[i]:
                answer.append((r, cosine[i][r]))
            elif r in rows.known:
                answer.append((r, float(rows.known[r] @ queries[i])))
            if len(answer) == k:
                break
        out.append(answer)
    return out


def reranked_pairs(corpus: Corpus, queries: np.ndarray, k: int, exclude: Sequence[int | None],
                   options: Rerank) -> list[list[tuple[int, float]]]:
    """``rerank_search`` over a corpus: its index searches, and row vectors come from the
    index when it is exact (in memory) or from the database (exact vectors by row id)."""
    index = corpus.index

    def vectors(rows: list[int]) -> dict[int, np.ndarray]:
        if index.exact:
            from indexer.errors import VectorIndexError

            out = {}
            for row in rows:
                try:
                    out[row] = index.vector(row)
                except VectorIndexError:
                    continue  # removed since the search
            return out
        found, matrix = corpus.reads.vectors_for_rows(rows)
        return dict(zip(found.tolist(), matrix, strict=True))

    return rerank_search(index.search, vectors, queries, k, exclude, options)
