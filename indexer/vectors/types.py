"""Index types chosen for the corpus size, their parameters tuned on the corpus itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from indexer.bounds import quote
from indexer.errors import InputError, VectorIndexError
from indexer.vectors.exact import rerank

__all__ = ["BUILD_BATCH", "BYTES_BUDGET", "EXACT_DEPTH", "FLAT_MAX", "INDEX_TYPES", "RECALL_TARGET",
           "REFINE_MIN",
           "ArraySource", "BuildReport", "VectorSource", "apply_params", "build_from",
           "build_index", "candidates_for", "choose_type", "drifted", "exact_neighbours",
           "exact_positions", "fit_figures", "fitting_type", "minimum_size", "recall_at",
           "refine_count", "refine_params", "refined", "skipping", "too_small"]

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
# Re-scoring codes kept in memory beside the IVF (``_refine_codes``): every dimension of the
# full vector in the finest scalar code that fits, 6 bits at 1280-d (960 B a vector), so with
# the 32 B of fast-scan codes and two 8 B ids a vector stays inside 1 KiB. Their cosines are
# within about 1e-3 of exact (8-bit codes would take 1,280 B; PCA-reduced codes lose the
# dimensions that tell cluster mates apart). The candidates are re-scored from them, and
# only the final k rows are read back.
BYTES_BUDGET = 1024  # memory a vector of an approximate index may take at most
# A refined index's best k * 2 by its codes are read from the database and re-scored exactly:
# the 6-bit codes order nearly tied neighbours slightly wrong (recall@10 0.951 by the codes
# alone on the benchmark's clustered data at 100,000; 1.0 with 2k re-scored exactly), and the
# extra rows stand in for rows deleted there but not yet in the index.
EXACT_DEPTH = 2
# A refined IVF vector besides its codes: 4-bit fast-scan codes, its id in its list, its row id.
REFINED_OVERHEAD = PCA_DIM // PQ_DIMS_PER_CODE // 2 + 8 + 8
REFINE_CODE_SECONDS = 1e-6  # what re-scoring one candidate from the codes costs a lookup
_REFINED_CANDIDATES = (REFINE_MIN, 100, 200, 400)  # cheap in memory: wider pools are tried
DRIFT_ENERGY = 0.05  # retrain when new vectors keep 5 points less of their variance...
DRIFT_DISTANCE = 1.25  # ...or sit 25% farther from their nearest IVF centroid
EXACT_CHUNK = 100_000
_FIT_CHUNK = 2_048
EXACT_QUERIES = 100  # queries scored against a batch at once: 100 x batch x 16 B of scratch
BUILD_BATCH = 10_000  # rows a build reads at once: 51 MB of 1280-d float32
TRAIN_PER_LIST = 50  # k-means points a list: enough for stable centroids, bounded time
# k-means points a centroid needs (FAISS warns below this): an IVF list, and each of the
# 16 centroids of a 4-bit code.
KMEANS_MIN_POINTS = 39
PQ_TRAIN_MIN = 16 * KMEANS_MIN_POINTS  # 624: fewer train 8-bit scalar codes instead
PCA_STEP = 8  # PCA widths are multiples of 8: an even number of 4-dimension codes
# The smallest corpus each type is built for: IVF needs two lists of KMEANS_MIN_POINTS
# (one list is an exhaustive scan), HNSW enough vectors to measure recall@10 on them.
MINIMUM_SIZE = {"flat": 0, "ivf": 2 * KMEANS_MIN_POINTS, "hnsw": 11}
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
_NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_EF_SEARCH = (16, 32, 64, 128, 256, 512)


def refined(factory: str) -> bool:
    """True when an index of ``factory`` re-scores its candidates from codes it holds."""
    return "Refine(" in factory


def refine_params(k: int, params: dict[str, int] | None = None,
                  depth: int | None = None, base: Any = None) -> Any:
    """FAISS search parameters of a refined index for a top-``k`` answer: its candidates
    (``refine_count``) re-scored from the codes in memory, the best ``depth`` (default k)
    of them returned. ``nprobe`` is set on the index by ``apply_params``; ``base``: the
    coarse search's own parameters (``skipping``), which then carry it."""
    import faiss

    out = faiss.IndexRefineSearchParameters()
    out.k_factor = max(1.0, refine_count(k, params) / max(1, depth or k))
    if base is not None:
        out.base_index_params = base
    return out


def skipping(index: Any, positions: np.ndarray) -> Any:
    """Coarse search parameters of a refined ``IDMap,...,Refine`` index that pass over the
    vectors at ``positions`` (places in its id map, not row ids) at the index's ``nprobe``:
    the IVF scan never proposes them, so every candidate re-scored is a live one."""
    import faiss

    batch = faiss.IDSelectorBatch(np.ascontiguousarray(positions, dtype=np.int64))
    others = faiss.IDSelectorNot(batch)
    out: Any = faiss.SearchParametersIVF()
    out.sel = others
    out.nprobe = int(faiss.extract_index_ivf(index).nprobe)
    out.referenced = (batch, others)  # the C++ side holds plain pointers to both
    return out


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
    sample_size: int = 0  # vectors the approximate kinds were trained on
    phases: dict[str, float] = field(default_factory=dict)  # seconds of each build step

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (stored beside the snapshot)."""
        return {"type": self.type, "factory": self.factory, "params": dict(self.params),
                "recall_at_10": self.recall_at_10, "trained_size": self.trained_size,
                "tune_queries": self.tune_queries, "seconds": round(self.seconds, 3),
                "tried": list(self.tried), "fit": dict(self.fit),
                "sample_size": self.sample_size, "phases": dict(self.phases)}

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
                   fit={str(k): float(v) for k, v in dict(data.get("fit", {})).items()},
                   sample_size=int(data.get("sample_size", 0)),
                   phases={str(k): float(v)
                           for k, v in dict(data.get("phases", {})).items()})


def choose_type(size: int, requested: str = "auto") -> str:
    """The index type for a corpus of ``size`` vectors (``requested`` unless it is auto)."""
    if requested not in INDEX_TYPES:
        raise InputError(f"unknown index type {quote(requested)}: choose one of "
                         f"{', '.join(INDEX_TYPES)}")
    if requested != "auto":
        return requested
    return "flat" if size < FLAT_MAX else "ivf"


def minimum_size(kind: str) -> int:
    """The fewest vectors an index of ``kind`` is built for (0: any corpus)."""
    return MINIMUM_SIZE.get(kind, 0)


def too_small(kind: str, size: int) -> str | None:
    """Why an index of ``kind`` cannot be trained on ``size`` vectors, or None when it can."""
    need = minimum_size(kind)
    if size >= need:
        return None
    why = (f"two lists of {KMEANS_MIN_POINTS} training vectors" if kind == "ivf"
           else f"a query and its {RECALL_K} neighbours, to measure its recall@{RECALL_K}")
    return (f"an {kind} index needs at least {need} vectors ({why}) and the corpus holds "
            f"{size}")


def fitting_type(size: int, requested: str = "auto") -> str:
    """``choose_type``, but exact (flat) while the corpus is too small for the type asked
    for: what maintenance builds (a compaction, ``index rebuild``), which must not fail."""
    kind = choose_type(size, requested)
    return "flat" if too_small(kind, size) else kind


def _nlist(size: int) -> int:
    # About 2 sqrt(n) lists, each trained from >= 39 points (FAISS warns below that).
    return int(max(1, min(65_536, 2 * np.sqrt(size), size // KMEANS_MIN_POINTS)))


def _train_size(size: int) -> int:
    """Vectors the approximate kinds are trained on (a random sample past that)."""
    return min(size, TRAIN_PER_LIST * _nlist(size))


def _pca_width(train: int, dim: int) -> int:
    """The PCA output width for ``train`` training vectors of ``dim`` (0: no PCA).

    ``PCA_DIM``, narrowed to fewer dimensions than training vectors (a PCA learned on n
    points has at most n - 1 directions of variance; FAISS refuses more than n).
    """
    width = min(PCA_DIM, (train - 1) // PCA_STEP * PCA_STEP)
    return width if PCA_STEP <= width < dim else 0


def candidates_for(kind: str, size: int, dim: int, train: int | None = None) -> list[str]:
    """FAISS factory strings to try for a type, smallest codes first.

    Fitted to the corpus: the PCA no wider than the ``train`` vectors it is learned on
    (the sample a build of ``size`` draws), lists of at least ``KMEANS_MIN_POINTS``
    vectors, 4-bit codes only from ``PQ_TRAIN_MIN`` training vectors.

    Exact (flat) while the corpus is small; past ``FLAT_MAX`` vectors an approximate index
    whose search parameter is raised until recall@10 against exact search, measured on a
    sample of the corpus at build time, reaches ``RECALL_TARGET``. Approximate indexes only
    propose candidates from compact codes (a PCA learned on the corpus, then 4-bit product
    quantisation scanned with SIMD, or 8-bit scalar quantisation). The first choice for ivf
    re-scores them from scalar codes of the full vectors it holds in memory (``IDMap,...,
    Refine(SQn)``, see ``REFINE_CODES``), so only the final k rows are read from the
    database (the source of truth) for their exact cosines; the others re-read every
    candidate from it.

    Approximate indexes search by L2 distance: on unit vectors it ranks like inner product,
    and it survives the mean removal of PCA, which inner product does not.

    A build reads its corpus from a ``VectorSource`` (the store, or arrays in memory) a batch
    at a time and never as one matrix: approximate kinds are trained on a random sample of
    rows (``TRAIN_PER_LIST`` a list) and tuned on ``TUNE_QUERIES`` more, whose exact
    neighbours are merged batch by batch while the corpus is added; their candidates are
    re-ranked from vectors read for those rows alone. Memory is the index plus the sample
    and a batch.
    """
    if kind == "flat":
        return ["IDMap2,Flat"]
    train = _train_size(size) if train is None else train
    width = _pca_width(train, dim)
    pca = [f"PCA{width}"] if width else []
    if kind == "ivf":
        reduced = width or dim
        codes = reduced // PQ_DIMS_PER_CODE
        fast = ([f"IVF{_nlist(size)},PQ{codes}x4fs"]
                if reduced % PQ_DIMS_PER_CODE == 0 and codes % 2 == 0
                and train >= PQ_TRAIN_MIN else [])
        bodies = [*fast, f"IVF{_nlist(size)},SQ8"]
        codes_with = _refine_codes(dim)
        kept = [f"IDMap,{','.join([*pca, fast[0]])},Refine({codes_with})"] \
            if fast and codes_with else []
        return kept + [",".join([*pca, b]) for b in bodies] + ([bodies[-1]] if pca else [])
    if kind == "hnsw":
        body = f"HNSW{HNSW_M},SQ8"
        return [",".join(["IDMap", *pca, body]), f"IDMap,{body}"] if pca else [f"IDMap,{body}"]
    raise InputError(f"unknown index type {quote(kind)}")


def _refine_codes(dim: int) -> str | None:
    """The finest scalar code of ``dim`` dimensions that keeps a refined IVF vector inside
    ``BYTES_BUDGET`` beside its fast-scan codes and ids (None: none does)."""
    for bits in (8, 6, 4):
        if dim * bits // 8 + REFINED_OVERHEAD <= BYTES_BUDGET:
            return f"SQ{bits}"
    return None


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
    if isinstance(inner, faiss.IndexRefine):
        inner = faiss.downcast_index(inner.base_index)
    pca: Any = None
    if isinstance(inner, faiss.IndexPreTransform):
        chain: Any = inner.chain
        pca = faiss.downcast_VectorTransform(chain.at(0))
        mean = faiss.vector_to_array(pca.mean).astype(np.float32)
    try:
        ivf: Any = faiss.extract_index_ivf(index)
    except RuntimeError:
        ivf = None
    centred = kept = distance = 0.0
    for start in range(0, len(vectors), _FIT_CHUNK):  # bounded scratch, whatever the sample
        reduced = np.ascontiguousarray(vectors[start:start + _FIT_CHUNK], dtype=np.float32)
        if pca is not None:
            centred += float(((reduced - mean) ** 2).sum())
            reduced = pca.apply(reduced)
            kept += float((reduced ** 2).sum())
        if ivf is not None:
            distance += float(ivf.quantizer.search(np.ascontiguousarray(reduced), 1)[0].sum())
    if pca is not None:
        out["pca_energy"] = kept / max(centred, 1e-12)
    if ivf is not None:
        out["coarse_distance"] = distance / len(vectors)
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


def exact_neighbours(queries: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product of ``queries`` over a corpus read batch by batch.

    ``batches`` yields (ids int64 (m,), vectors float32 (m, d)); a running top-k is
    merged batch after batch (``EXACT_QUERIES`` queries at a time), so only one batch,
    its scores for those queries and (n, 2k) candidates are held at once.
    Returns (scores float32 (n, k'), ids int64 (n, k')), best first, k' = min(k, corpus).
    """
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for ids, vectors in batches:
        if not len(ids) or k <= 0:
            continue
        keep = min(k, len(ids))
        top_scores = np.empty((len(queries), keep), np.float32)
        top_ids = np.empty((len(queries), keep), np.int64)
        for start in range(0, len(queries), EXACT_QUERIES):
            scores = queries[start:start + EXACT_QUERIES] @ vectors.T
            np.negative(scores, out=scores)
            top = np.argpartition(scores, keep - 1, axis=1)[:, :keep]
            top_scores[start:start + EXACT_QUERIES] = -np.take_along_axis(scores, top, 1)
            top_ids[start:start + EXACT_QUERIES] = ids[top]
        merged_scores = np.concatenate([best_scores, top_scores], 1)
        merged_ids = np.concatenate([best_ids, top_ids], 1)
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, 1)
        best_ids = np.take_along_axis(merged_ids, order, 1)
    return best_scores, best_ids


def exact_positions(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row positions of each query's exact top-k by inner product (int64 (n, k)).

    The corpus is scanned in chunks, so nothing of its size is copied.
    """
    chunks = ((np.arange(start, min(start + EXACT_CHUNK, len(vectors)), dtype=np.int64),
               vectors[start:start + EXACT_CHUNK]) for start in range(0, len(vectors),
                                                                       EXACT_CHUNK))
    return exact_neighbours(queries, chunks, min(k, len(vectors)))[1]


class VectorSource(Protocol):
    """A corpus a build reads: unit vectors under int64 row ids, ascending.

    Nothing of the corpus's size is asked for at once: ids and vectors come batch by
    batch, and ``rows`` is called with at most ``batch`` ids.
    """

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""

    @property
    def batch(self) -> int:
        """Rows a read returns at most."""

    def count(self) -> int:
        """Number of vectors."""

    def ids(self) -> Iterator[np.ndarray]:
        """Every row id (int64 (m,) a batch), ascending."""

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row ids int64 (m,), unit vectors float32 (m, dim)) a batch, ascending ids."""

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, unit vectors) of those of ``ids`` that exist, in any order."""


class ArraySource:
    """A ``VectorSource`` over vectors already in memory (slices, never copies)."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray, batch: int = BUILD_BATCH) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(self._ids, kind="stable")
        if (order != np.arange(len(order))).any():  # ascending ids, like the store
            self.vectors, self._ids = self.vectors[order], self._ids[order]
        self.batch = batch

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return int(self.vectors.shape[1])

    def count(self) -> int:
        """Number of vectors."""
        return len(self._ids)

    def ids(self) -> Iterator[np.ndarray]:
        """Every row id, a batch at a time."""
        for start in range(0, len(self._ids), self.batch):
            yield self._ids[start:start + self.batch]

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) a batch at a time (views of the arrays)."""
        for start in range(0, len(self._ids), self.batch):
            yield self._ids[start:start + self.batch], self.vectors[start:start + self.batch]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the ids held."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(self._ids):
            return wanted[:0], self.vectors[:0]
        at = np.minimum(np.searchsorted(self._ids, wanted), len(self._ids) - 1)
        hit = self._ids[at] == wanted
        return wanted[hit], self.vectors[at[hit]]


def _fetch(source: VectorSource, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``ids`` (ids int64 (m,), float32 (m, d), in the order asked), read at most
    a batch at a time into one array; ids the source no longer has are left out."""
    out = np.empty((len(ids), source.dim), np.float32)
    held = np.zeros(len(ids), bool)
    for start in range(0, len(ids), source.batch):
        chunk = ids[start:start + source.batch]
        found, vectors = source.rows(chunk)
        position = {int(r): n for n, r in enumerate(found)}
        for n, row_id in enumerate(chunk.tolist(), start):
            if row_id in position:
                out[n] = vectors[position[row_id]]
                held[n] = True
    if held.all():
        return np.asarray(ids, np.int64), out
    return np.asarray(ids, np.int64)[held], out[held]


def _sample_ids(source: VectorSource, size: int, counts: tuple[int, ...],
                rng: np.random.Generator) -> list[np.ndarray]:
    """For each of ``counts``, that many distinct row ids drawn at random from the source,
    in one pass over its ids (held: the draws, never the corpus's ids)."""
    draws = [np.sort(rng.choice(size, size=min(n, size), replace=False)) for n in counts]
    wanted = np.unique(np.concatenate(draws)) if draws else np.zeros(0, np.int64)
    picked = np.zeros(len(wanted), np.int64)
    seen = 0
    for ids in source.ids():
        lo, hi = np.searchsorted(wanted, [seen, seen + len(ids)])
        picked[lo:hi] = ids[wanted[lo:hi] - seen]
        seen += len(ids)
    picked = picked[:np.searchsorted(wanted, seen)]  # rows deleted since the count
    return [picked[np.searchsorted(wanted, d[d < seen])] for d in draws]


def _rerank(source: VectorSource, queries: np.ndarray, candidates: np.ndarray,
            widths: list[int], k: int) -> list[np.ndarray]:
    """Each query's top k ids among its first ``width`` candidates (for each width), by
    exact cosine of the candidates' vectors read from the source, a bounded chunk of
    queries at a time: what ``VectorIndex.search`` does with rows from the database."""
    outs = [np.full((len(queries), k), -1, dtype=np.int64) for _ in widths]
    step = max(1, source.batch // max(1, candidates.shape[1]))
    for start in range(0, len(queries), step):
        chunk = candidates[start:start + step]
        found, vectors = _fetch(source, np.unique(chunk[chunk >= 0]))
        for out, width in zip(outs, widths, strict=True):
            out[start:start + step] = rerank(queries[start:start + step], chunk[:, :width],
                                             found, vectors, k)[1]
    return outs


def _without_self(found: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Each row of ``found`` without the query's own id, cut to ``k``."""
    return np.stack([row[row != mine][:k] for row, mine in zip(found, own, strict=True)])


def _fill(index: Any, source: VectorSource, queries: np.ndarray | None, k: int,
          phases: dict[str, float]) -> tuple[int, np.ndarray | None]:
    """Add the source to ``index`` batch by batch; with ``queries``, compute their exact
    top-k ids in the same pass. Returns (rows added, top-k ids or None); adds the seconds
    spent reading, adding and (the rest) ranking to ``phases``."""
    added = 0
    started = time.perf_counter()
    spent = {"read_s": 0.0, "add_s": 0.0}

    def feed() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal added
        batches = source.batches()
        while True:
            mark = time.perf_counter()
            batch = next(batches, None)
            spent["read_s"] += time.perf_counter() - mark
            if batch is None:
                return
            ids, vectors = batch
            mark = time.perf_counter()
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            spent["add_s"] += time.perf_counter() - mark
            added += len(ids)
            yield ids, vectors

    top = None
    if queries is None:
        for _ in feed():
            pass
    else:
        top = exact_neighbours(queries, feed(), k)[1]
    for name, seconds in spent.items():
        phases[name] = phases.get(name, 0.0) + seconds
    if queries is not None:
        phases["exact_s"] = phases.get("exact_s", 0.0) + time.perf_counter() - started \
            - sum(spent.values())
    return added, top


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: str, *,
                seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[Any, BuildReport]:
    """Build an index of ``kind`` over unit ``vectors`` (float32 (n, d)) under ``ids``.

    The in-memory form of ``build_from``.
    """
    return build_from(ArraySource(vectors, ids), kind, seed=seed, log=log)


def build_from(source: VectorSource, kind: str, *, seed: int = 0,
               log: Callable[[str], None] | None = None) -> tuple[Any, BuildReport]:
    """Build an index of ``kind`` over a corpus read batch by batch from ``source``.

    Memory: the index, one batch, and the random sample the approximate kinds are trained
    and tuned on (``TRAIN_PER_LIST`` vectors a list, ``TUNE_QUERIES`` queries). Approximate
    kinds try each candidate factory: trained on the sample, filled batch by batch (the
    exact top-k of the tuning queries merged in the same pass), then the search parameter
    is raised; for each number of candidates re-scored, the smallest setting whose
    recall@10 against exact search on the queries (themselves left out of both answers;
    candidates re-scored from the index's own codes when it holds them, else re-ranked by
    exact cosine of vectors read from the source) reaches
    ``RECALL_TARGET`` is noted with its lookup cost (the measured scan plus
    ``RERANK_SECONDS`` a candidate), and the cheapest is kept. The first factory that
    reaches the target wins, else the setting with the best recall.
    """
    import faiss

    started = time.perf_counter()
    size, dim = source.count(), source.dim
    if kind == "flat" or size == 0:
        index: Any = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
        # Its codes allocated once for the corpus: filled batch by batch they would grow
        # by doubling, copying themselves each time (up to 1.6 times the index at once).
        flat: Any = faiss.downcast_index(index.index)
        flat.codes.resize(size * flat.code_size)
        flat.codes.resize(0)  # the capacity stays
        phases: dict[str, float] = {}
        added, _ = _fill(index, source, None, 0, phases)
        return index, BuildReport(type="flat", factory="IDMap2,Flat", trained_size=added,
                                  seconds=time.perf_counter() - started,
                                  phases=_rounded(phases))
    reason = too_small(kind, size)
    if reason is not None:
        raise VectorIndexError(reason)
    rng = np.random.default_rng(seed)
    train_ids, query_ids = _sample_ids(
        source, size, (_train_size(size), TUNE_QUERIES), rng)
    _, train = _fetch(source, train_ids)
    query_ids, queries = _fetch(source, query_ids)
    phases = {"sample_s": time.perf_counter() - started}
    if log is not None:
        log(f"sampled {len(train)} training vectors, {len(queries)} tuning queries "
            f"of {size} ({time.perf_counter() - started:.1f} s)")
    k = min(RECALL_K, size - 1)
    threads = faiss.omp_get_max_threads()
    truth: np.ndarray | None = None
    best: tuple[float, Any, BuildReport] | None = None
    tried: list[dict[str, Any]] = []
    for factory in candidates_for(kind, size, dim, len(train)):
        index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
        mark = time.perf_counter()
        index.train(np.ascontiguousarray(train))
        _drop_pca_scratch(index)
        phases["train_s"] = phases.get("train_s", 0.0) + time.perf_counter() - mark
        if kind == "hnsw":
            _hnsw_of(index).efConstruction = HNSW_EF_CONSTRUCTION
        added, top = _fill(index, source, queries if truth is None else None, k + 1, phases)
        mark = time.perf_counter()
        if top is not None:
            truth = _without_self(top, query_ids, k)
        assert truth is not None
        if log is not None:
            log(f"{factory}: trained and filled with {added} "
                f"({time.perf_counter() - started:.1f} s)")
        steps = [{"nprobe": p} for p in _NPROBES if p <= faiss.extract_index_ivf(index).nlist] \
            if kind == "ivf" else [{"efSearch": e} for e in _EF_SEARCH]
        cheapest: tuple[float, BuildReport] | None = None  # (seconds a lookup, report)
        in_memory = refined(factory)
        # candidate counts still short of the target
        open_counts = list(_REFINED_CANDIDATES if in_memory else _CANDIDATES)
        for step in steps:
            grid = [{**step, "candidates": c} for c in open_counts]
            apply_params(index, step)
            if in_memory:
                scan, founds = _refined_search(index, source, queries, grid, k + 1, threads)
            else:
                widths = [refine_count(k + 1, params) for params in grid]
                began = time.perf_counter()
                _, cands = index.search(queries, max(widths))
                scan = (time.perf_counter() - began) * threads / len(queries)
                founds = _rerank(source, queries, cands, widths, k + 1)
            for params, found in zip(grid, founds, strict=True):
                recall = recall_at(_without_self(found, query_ids, k), truth)
                cost = _lookup_seconds(scan, params["candidates"], in_memory)
                tried.append({"factory": factory, **params, "recall_at_10": round(recall, 4),
                              "lookup_ms": round(cost * 1000, 3)})
                if log is not None:
                    log(f"{factory} {params}: recall@10 {recall:.4f}, {cost * 1000:.2f} ms")
                report = BuildReport(type=kind, factory=factory, params=params,
                                     recall_at_10=round(recall, 4), trained_size=added,
                                     tune_queries=len(query_ids))
                if best is None or recall > best[0]:
                    best = (recall, index, report)
                if recall >= RECALL_TARGET:
                    open_counts.remove(params["candidates"])
                    if cheapest is None or cost < cheapest[0]:
                        cheapest = (cost, report)
            # A larger step scans more: once even the fewest candidates left cannot beat
            # the cheapest setting found, raising it further is pointless.
            if not open_counts or (cheapest is not None and _lookup_seconds(
                    scan, min(open_counts), in_memory) >= cheapest[0]):
                break
        phases["tune_s"] = phases.get("tune_s", 0.0) + time.perf_counter() - mark
        if cheapest is not None:  # the first factory that reaches the target wins
            best = (cheapest[1].recall_at_10, index, cheapest[1])
            break
    assert best is not None
    _, index, report = best
    apply_params(index, report.params)
    report.fit = fit_figures(index, train[:TRAIN_PER_LIST * 200])
    report.tried = tried
    report.seconds = time.perf_counter() - started
    report.phases = _rounded(phases)
    report.sample_size = len(train)
    return index, report


def _drop_pca_scratch(index: Any) -> None:
    """Empty a trained PCA's full eigenvector matrix (d x d floats, 6.5 MB at 1280-d): only
    its first rows, kept apart, project vectors; the rest would be saved and loaded with
    every snapshot."""
    import faiss

    inner: Any = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    if isinstance(inner, faiss.IndexRefine):
        inner = faiss.downcast_index(inner.base_index)
    if not isinstance(inner, faiss.IndexPreTransform):
        return
    chain: Any = inner.chain
    for number in range(chain.size()):
        step: Any = faiss.downcast_VectorTransform(chain.at(number))
        if isinstance(step, faiss.PCAMatrix):
            step.PCAMat.clear()


def _lookup_seconds(scan: float, candidates: int, in_memory: bool = False) -> float:
    """What one lookup costs at a tuning setting: the scan, then its candidates re-scored
    (from codes in memory, or re-read from the database)."""
    each = REFINE_CODE_SECONDS if in_memory else RERANK_SECONDS
    return scan + refine_count(RECALL_K, {"candidates": candidates}) * each


def _refined_search(index: Any, source: VectorSource, queries: np.ndarray,
                    grid: list[dict[str, int]], k: int,
                    threads: int) -> tuple[float, list[np.ndarray]]:
    """Top-k ids of ``queries`` from a refined index at each setting of ``grid`` (its
    candidates re-scored from the codes it holds, the best ``EXACT_DEPTH`` * k of them by
    exact cosines read from the source, as a lookup does), and the seconds a lookup of the
    scan alone takes (the fewest candidates: re-scoring is priced by ``_lookup_seconds``)."""
    founds = []
    scan = 0.0
    depth = EXACT_DEPTH * k
    for params in grid:
        began = time.perf_counter()
        ranked = index.search(queries, depth, params=refine_params(k, params, depth))[1]
        if not scan:
            scan = (time.perf_counter() - began) * threads / len(queries)
        founds.append(_rerank(source, queries, ranked, [depth], k)[0])
    return scan, founds


def _rounded(phases: dict[str, float]) -> dict[str, float]:
    return {name: round(seconds, 3) for name, seconds in phases.items()}
