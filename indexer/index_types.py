"""Index types chosen for the corpus size, their parameters tuned on the corpus itself.

Exact (flat) while the corpus is small; past ``FLAT_MAX`` vectors an approximate index
whose search parameter is raised until recall@10 against exact search, measured on a
sample of the corpus at build time, reaches ``RECALL_TARGET``. Approximate indexes only
propose candidates: the final scores are exact cosines re-read from the database (the
source of truth), so they can hold compact codes (a PCA learned on the corpus, then 4-bit
product quantisation scanned with SIMD, or 8-bit scalar quantisation) and still rank like
exact search.

Approximate indexes search by L2 distance: on unit vectors it ranks like inner product,
and it survives the mean removal of PCA, which inner product does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.errors import InputError

__all__ = ["FLAT_MAX", "INDEX_TYPES", "RECALL_TARGET", "REFINE_MIN", "BuildReport",
           "apply_params", "build_index", "candidates_for", "choose_type", "drifted",
           "exact_positions",
           "fit_figures", "recall_at",
           "refine_count"]

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")
FLAT_MAX = 50_000  # exact search below this many vectors: a few ms a query, no training
RECALL_TARGET = 0.95
RECALL_K = 10
TUNE_QUERIES = 500
PCA_DIM = 256  # 1 byte a dimension after SQ8: 256 B a vector, well inside 1 KiB
# IVF codes: 4-bit product quantisation scanned with SIMD lookups ("fast scan"), 4 dimensions
# a sub-quantiser (32 B a vector after PCA); exact re-scoring of the candidates restores the
# ranking the coarse codes blur. Scalar quantisation (SQ8) stays as the fallback.
PQ_DIMS_PER_CODE = 4
# What re-scoring one candidate costs a lookup: re-reading its stored vector (5 KB) from
# the database. Tuning weighs it against the measured scan time to pick nprobe and how
# many candidates (a scan of fast-scan codes costs less than reading candidates back).
RERANK_SECONDS = 30e-6
REFINE_FACTOR = 4  # candidates re-scored exactly: k * 4, at least the tuned minimum
REFINE_MIN = 40
# Numbers of candidates re-scored that tuning tries, each with the smallest search
# parameter that reaches the recall target; the cheapest lookup of those is kept.
_CANDIDATES = (REFINE_MIN, 100, 200)
DRIFT_ENERGY = 0.05  # retrain when new vectors keep 5 points less of their variance...
DRIFT_DISTANCE = 1.25  # ...or sit 25% farther from their nearest IVF centroid
EXACT_CHUNK = 100_000
TRAIN_PER_LIST = 50  # k-means points a list: enough for stable centroids, bounded time
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
_NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_EF_SEARCH = (16, 32, 64, 128, 256, 512)


def refine_count(k: int, params: dict[str, int] | None = None) -> int:
    """How many candidates an approximate index proposes for a top-k answer.

    ``k * REFINE_FACTOR``, at least the ``candidates`` minimum tuned at build time
    (``REFINE_MIN`` for indexes built before it was tuned).
    """
    minimum = (params or {}).get("candidates", REFINE_MIN)
    return max(k * REFINE_FACTOR, int(minimum))


@dataclass
class BuildReport:
    """How an index was built: its type, factory string, tuned parameters and measured recall."""

    type: str
    factory: str
    params: dict[str, int] = field(default_factory=dict)
    recall_at_10: float = 1.0
    trained_size: int = 0
    tune_queries: int = 0
    seconds: float = 0.0
    tried: list[dict[str, Any]] = field(default_factory=list)
    fit: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (stored beside the snapshot)."""
        return {"type": self.type, "factory": self.factory, "params": dict(self.params),
                "recall_at_10": self.recall_at_10, "trained_size": self.trained_size,
                "tune_queries": self.tune_queries, "seconds": round(self.seconds, 3),
                "tried": list(self.tried), "fit": dict(self.fit)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildReport:
        """Read back what ``to_json`` wrote (older snapshots lack most fields)."""
        kind = str(data.get("type", "flat"))
        return cls(type="flat" if kind == "flat-ip" else kind,
                   factory=str(data.get("factory", "IDMap2,Flat")),
                   params={str(k): int(v) for k, v in dict(data.get("params", {})).items()},
                   recall_at_10=float(data.get("recall_at_10", 1.0)),
                   trained_size=int(data.get("trained_size", 0)),
                   tune_queries=int(data.get("tune_queries", 0)),
                   seconds=float(data.get("seconds", 0.0)),
                   tried=list(data.get("tried", [])),
                   fit={str(k): float(v) for k, v in dict(data.get("fit", {})).items()})


def choose_type(size: int, requested: str = "auto") -> str:
    """The index type for a corpus of ``size`` vectors (``requested`` unless it is auto)."""
    if requested not in INDEX_TYPES:
        raise InputError(f"unknown index type {requested!r}: choose one of "
                         f"{', '.join(INDEX_TYPES)}")
    if requested != "auto":
        return requested
    return "flat" if size < FLAT_MAX else "ivf"


def _nlist(size: int) -> int:
    # About 2 sqrt(n) lists, each trained from >= 39 points (FAISS warns below that).
    return int(max(1, min(65_536, 2 * np.sqrt(size), size // 39)))


def candidates_for(kind: str, size: int, dim: int) -> list[str]:
    """FAISS factory strings to try for a type, smallest codes first."""
    if kind == "flat":
        return ["IDMap2,Flat"]
    pca = [f"PCA{PCA_DIM}"] if dim > PCA_DIM else []
    if kind == "ivf":
        reduced = PCA_DIM if pca else dim
        codes = reduced // PQ_DIMS_PER_CODE
        fast = ([f"IVF{_nlist(size)},PQ{codes}x4fs"]
                if reduced % PQ_DIMS_PER_CODE == 0 and codes % 2 == 0 else [])
        bodies = [*fast, f"IVF{_nlist(size)},SQ8"]
        return [",".join([*pca, b]) for b in bodies] + ([bodies[-1]] if pca else [])
    if kind == "hnsw":
        body = f"HNSW{HNSW_M},SQ8"
        return [",".join(["IDMap", *pca, body]), f"IDMap,{body}"] if pca else [f"IDMap,{body}"]
    raise InputError(f"unknown index type {kind!r}")


def _hnsw_of(index: Any) -> Any:
    """The HNSW graph inside an ``IDMap[,PCA],HNSW`` index."""
    import faiss

    inner: Any = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner.hnsw


def apply_params(index: Any, params: dict[str, int]) -> None:
    """Set the search-time parameters (nprobe, efSearch) on a loaded index.

    ``candidates`` (how many are re-scored exactly) is read by ``refine_count``.
    """
    import faiss

    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    if "efSearch" in params:
        _hnsw_of(index).efSearch = int(params["efSearch"])


def fit_figures(index: Any, vectors: np.ndarray) -> dict[str, float]:
    """How well an approximate index's trained parts describe ``vectors`` (float32 (n, d)).

    ``pca_energy``: share of the (centred) variance the learned PCA keeps;
    ``coarse_distance``: mean squared distance to the nearest IVF centroid. Vectors from
    a shifted distribution keep less energy and land farther from the centroids.
    """
    import faiss

    out: dict[str, float] = {}
    if not len(vectors):
        return out
    inner: Any = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    reduced = np.ascontiguousarray(vectors, dtype=np.float32)
    if isinstance(inner, faiss.IndexPreTransform):
        chain: Any = inner.chain
        pca: Any = faiss.downcast_VectorTransform(chain.at(0))
        mean = faiss.vector_to_array(pca.mean).astype(np.float32)
        centred = float(((reduced - mean) ** 2).sum())
        reduced = pca.apply(reduced)
        out["pca_energy"] = float((reduced ** 2).sum()) / max(centred, 1e-12)
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return out
    distances, _ = ivf.quantizer.search(np.ascontiguousarray(reduced), 1)
    out["coarse_distance"] = float(distances.mean())
    return out


def drifted(trained: dict[str, float], now: dict[str, float]) -> bool:
    """True when new vectors fit the trained parts clearly worse than the training set did."""
    if "pca_energy" in trained and "pca_energy" in now \
            and now["pca_energy"] < trained["pca_energy"] - DRIFT_ENERGY:
        return True
    return ("coarse_distance" in trained and "coarse_distance" in now
            and now["coarse_distance"] > trained["coarse_distance"] * DRIFT_DISTANCE)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` (int64 (n, k)) found in the same row of ``found``."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / max(1, truth.size)


def exact_positions(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row positions of each query's exact top-k by inner product (int64 (n, k)).

    The corpus is scanned in chunks, so nothing of its size is copied.
    """
    k = min(k, len(vectors))
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_pos = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), EXACT_CHUNK):
        scores = queries @ vectors[start:start + EXACT_CHUNK].T
        keep = min(k, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], 1)
        best_pos = np.concatenate([best_pos, top + start], 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
    out: np.ndarray = np.take_along_axis(best_pos, order, 1)
    return out


def _rerank(candidates: np.ndarray, position: dict[int, int], vectors: np.ndarray,
            queries: np.ndarray, k: int) -> np.ndarray:
    # What VectorIndex.search does with rows from the database, done here in memory.
    out = np.full((len(queries), k), -1, dtype=np.int64)
    for row, (query, cands) in enumerate(zip(queries, candidates, strict=True)):
        cands = cands[cands >= 0]
        if not cands.size:
            continue
        scores = vectors[[position[int(c)] for c in cands]] @ query
        best = cands[np.argsort(-scores, kind="stable")[:k]]
        out[row, :len(best)] = best
    return out


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: str, *,
                seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[Any, BuildReport]:
    """Build an index of ``kind`` over unit ``vectors`` (float32 (n, d)) under ``ids``.

    Approximate kinds try each candidate factory. For each number of candidates
    re-scored exactly, the search parameter (nprobe, efSearch) is raised until recall@10
    against exact search on up to ``TUNE_QUERIES`` corpus vectors (themselves left out
    of both answers) reaches ``RECALL_TARGET``; of those settings the one with the
    lowest lookup cost (the measured scan plus ``RERANK_SECONDS`` a candidate) is kept.
    The first factory that reaches the target wins, else the setting with the best
    recall.
    """
    import faiss

    started = time.perf_counter()
    size, dim = vectors.shape
    if kind == "flat" or size == 0:
        index = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
        if size:
            index.add_with_ids(vectors, ids)
        return index, BuildReport(type="flat", factory="IDMap2,Flat", trained_size=size,
                                  seconds=time.perf_counter() - started)
    rng = np.random.default_rng(seed)
    picks = rng.choice(size, size=min(TUNE_QUERIES, size), replace=False)
    queries = vectors[picks]
    k = min(RECALL_K, size - 1)
    truth = ids[exact_positions(vectors, queries, k + 1)]
    truth = np.stack([row[row != ids[p]][:k] for row, p in zip(truth, picks, strict=True)])
    position = {int(i): n for n, i in enumerate(ids)}
    train = vectors[rng.choice(size, size=min(size, TRAIN_PER_LIST * _nlist(size)),
                               replace=False)] if kind == "ivf" else vectors
    best: tuple[float, Any, BuildReport] | None = None
    tried: list[dict[str, Any]] = []
    threads = faiss.omp_get_max_threads()
    for factory in candidates_for(kind, size, dim):
        index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
        index.train(np.ascontiguousarray(train))
        if kind == "hnsw":
            _hnsw_of(index).efConstruction = HNSW_EF_CONSTRUCTION
        index.add_with_ids(vectors, ids)
        steps = [{"nprobe": p} for p in _NPROBES if p <= faiss.extract_index_ivf(index).nlist] \
            if kind == "ivf" else [{"efSearch": e} for e in _EF_SEARCH]
        cheapest: tuple[float, BuildReport] | None = None  # (seconds a lookup, report)
        for count in _CANDIDATES:  # each candidate count with the smallest step that suffices
            for step in steps:
                params = {**step, "candidates": count}
                apply_params(index, params)
                began = time.perf_counter()
                _, cands = index.search(queries, refine_count(k + 1, params))
                scan = (time.perf_counter() - began) * threads / len(queries)
                cost = scan + refine_count(RECALL_K, params) * RERANK_SECONDS
                found = _rerank(cands, position, vectors, queries, k + 1)
                found = np.stack([row[row != ids[p]][:k] for row, p in zip(found, picks,
                                                                           strict=True)])
                recall = recall_at(found, truth)
                tried.append({"factory": factory, **params, "recall_at_10": round(recall, 4),
                              "lookup_ms": round(cost * 1000, 3)})
                if log is not None:
                    log(f"{factory} {params}: recall@10 {recall:.4f}, {cost * 1000:.2f} ms")
                report = BuildReport(type=kind, factory=factory, params=params,
                                     recall_at_10=round(recall, 4), trained_size=size,
                                     tune_queries=len(picks))
                if best is None or recall > best[0]:
                    best = (recall, index, report)
                if recall >= RECALL_TARGET:
                    if cheapest is None or cost < cheapest[0]:
                        cheapest = (cost, report)
                    break
        if cheapest is not None:  # the first factory that reaches the target wins
            best = (cheapest[1].recall_at_10, index, cheapest[1])
            break
    assert best is not None
    _, index, report = best
    apply_params(index, report.params)
    report.fit = fit_figures(index, train[:TRAIN_PER_LIST * 200])
    report.tried = tried
    report.seconds = time.perf_counter() - started
    return index, report
