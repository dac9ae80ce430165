"""The FAISS index: a snapshot on disk, a tail of newer rows, and a watermark.

The database is the source of truth; the index is derived from it. FAISS holds
L2-normalised float32 vectors (or compact codes of them) and int64 embedding row ids
only, so scores are cosine similarities. Three files hold it. The snapshot
(``<model>.faiss``, of the type chosen for the corpus size, see ``indexer.vectors.types``)
is written atomically (temporary file, fsync, rename). The tail (``<model>.tail``) holds
the rows added since, as raw (id, vector) records appended batch by batch (after cutting
any torn end) and searched exactly, so adding a batch costs the same at any corpus size.
``<model>.json``, written atomically last, records the model, dimension, how the
snapshot was built (type, parameters, measured recall) and how many rows of each file
are valid up to which watermark (the last row id). Opening memory-maps the snapshot and
replays the database rows past the watermark into the tail, so a crash between the
database commit and a save loses nothing. The tail is folded into the snapshot
(compaction) once it outgrows a small share of it.

A new snapshot (a compaction, or a build) never replaces the current one before it is
complete: it is written beside it (``<model>.faiss.next``, atomically), a build's is
verified (it reads back, holds exactly the database's row ids up to its watermark, and
finds stored vectors as themselves), and only then is it swapped in, in three steps that
each leave one whole index should the process die: the metadata, naming the new file as
pending, is the commit; the rename over the old snapshot and the metadata without the
pending name follow (the next save finishes them). Until the commit the old snapshot,
tail and metadata are untouched, and a failure is one ``VectorIndexError``.

Replay reads rows in id order past the watermark, so it needs a row's id to be higher
than every row committed before it: SQLite's AUTOINCREMENT and PostgreSQL's sequence
hand out increasing ids, and every transaction that inserts embedding rows first takes
the lock that serialises those inserts (``indexer.store.serialise.serialise_embedding_inserts``: a
transaction-scoped advisory lock on PostgreSQL, SQLite's write lock), so ids commit in
order even while several workers on several hosts store vectors at once. A worker adds
the rows it just stored directly only when they follow its watermark without a gap;
otherwise other workers committed rows in between, and it replays the database instead
(``add_stored``), so its watermark never passes a row it does not hold.

Processes sharing one data directory save one at a time: ``save``, ``compact`` and
``rebuild`` hold an exclusive ``flock`` on the index directory, and a save that finds
the files changed since this process last read or wrote them (another process saved)
first takes those files and replays the database past them, then saves. Every row this
process holds is committed, so the files never go back to older state. Atomic-write
temporaries are written only under that lock, so a save also deletes those a killed
process left.

Approximate snapshots only propose candidates; their final scores are exact cosines of
the vectors re-read from the database, so rows deleted there drop out as well.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from indexer.atomic import TEMPORARY_SUFFIX, atomic_write, sync_directory, temporary_prefix
from indexer.errors import ModelMismatchError, ThumbsearchError, VectorIndexError, disk_full
from indexer.store.reads import Reads
from indexer.vectors.types import (
    BUILD_BATCH,
    RECALL_K,
    BuildReport,
    VectorSource,
    apply_params,
    build_from,
    choose_type,
    drifted,
    fit_figures,
    fitting_type,
    refine_count,
    too_small,
)
from indexer.writable import path_problem

__all__ = ["IndexInfo", "StoreSource", "VectorIndex", "l2_normalise", "read_tail",
           "tail_record"]

TAIL_MIN = 2_000  # the tail may hold this many rows before it is folded in...
TAIL_SHARE = 0.02  # ...or this share of the snapshot, whichever is more,
TAIL_MAX = 50_000  # but never more than this (replay and exact search of the tail stay cheap)
RETRAIN_GROWTH = 2.0  # an approximate snapshot is trained again once the corpus doubles
# The database holds every vector: the next open replays what the index could not save.
_SAVE_FIX = ("make it writable, or set THUMBSEARCH_HOME to a writable directory (nothing "
             "stored was lost: the index is rebuilt from the database)")
FEW_QUERIES = 4  # searches of this many queries or fewer run on one thread
SELF_PROBES = 20  # stored vectors a new snapshot must find (as themselves) before it is used
SELF_FOUND = 0.9  # share of them it must find: approximate kinds may miss the odd one
_ID_CHUNK = 1 << 20  # ids summed at once when a snapshot's ids are checked
# What a swap replaces in memory (and restores when it fails).
_STATE = ("watermark", "build", "requested", "_base", "_base_watermark", "_mmapped",
          "_stale_base", "_base_changed", "_tail", "_tail_saved", "_disk_meta")


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
    snapshot_size: int = 0
    tail_size: int = 0
    factory: str = "IDMap2,Flat"
    params: dict[str, int] = field(default_factory=dict)
    recall_at_10: float = 1.0
    bytes_per_vector: float = 0.0
    memory_bytes: int = 0
    mmap: bool = False


def _refuse_small(size: int, requested: str) -> None:
    """VectorIndexError when the type asked for cannot be trained on ``size`` vectors."""
    reason = too_small(choose_type(size, requested), size)
    if reason is not None:
        raise VectorIndexError(f"{reason}: use `--type auto` (exact search at this size) or "
                               "add vectors first; the current index is untouched")


def _index_writer(index: Any) -> Callable[[BinaryIO], None]:
    """A writer for ``atomic_write`` that streams a FAISS index (no copy of it in memory)."""
    import faiss

    def write_to(handle: BinaryIO) -> None:
        failed: list[OSError] = []

        def write(chunk: bytes) -> None:
            if not failed:  # FAISS would hide the OSError (a full disk) behind its own error
                try:
                    handle.write(chunk)
                except OSError as exc:
                    failed.append(exc)

        writer: Any = faiss.PyCallbackIOWriter(write)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        if failed:
            raise failed[0]

    return write_to


def _empty_flat(dim: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _index_ids(index: Any) -> np.ndarray:
    """Every id an index holds, int64 (n,)."""
    import faiss

    if hasattr(index, "id_map"):
        return np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists: Any = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        count = lists.list_size(number)
        if count:
            pointer = lists.get_ids(number)
            parts.append(faiss.rev_swig_ptr(pointer, count).astype(np.int64).copy())
            lists.release_ids(number, pointer)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _id_chunks(index: Any) -> Iterator[np.ndarray]:
    """The ids an index holds, int64 chunks of at most ``_ID_CHUNK`` (views, no copy)."""
    import faiss

    if hasattr(index, "id_map"):
        held = int(index.id_map.size())
        if held:
            ids = faiss.rev_swig_ptr(index.id_map.data(), held)
            for start in range(0, held, _ID_CHUNK):
                yield np.asarray(ids[start:start + _ID_CHUNK], dtype=np.int64)
        return
    ivf = faiss.extract_index_ivf(index)
    lists: Any = ivf.invlists
    for number in range(ivf.nlist):
        count = lists.list_size(number)
        if count:
            pointer = lists.get_ids(number)
            yield faiss.rev_swig_ptr(pointer, count).astype(np.int64)
            lists.release_ids(number, pointer)


@dataclass
class _IdDigest:
    """Count, highest, wrapped sum and xor of a set of row ids: equal digests, equal sets
    (for any change a build can meet: rows deleted, added or read twice)."""

    count: int = 0
    highest: int = 0
    total: int = 0
    xor: int = 0

    def update(self, ids: np.ndarray) -> None:
        if not ids.size:
            return
        as_unsigned = ids.astype(np.int64).view(np.uint64)
        self.count += int(ids.size)
        self.highest = max(self.highest, int(ids.max()))
        self.total = (self.total + int(as_unsigned.sum(dtype=np.uint64))) % (1 << 64)
        self.xor ^= int(np.bitwise_xor.reduce(as_unsigned))


def _one_line(exc: BaseException) -> str:
    """An exception's message on one readable line (FAISS's carry the C++ call site first)."""
    text = str(exc)
    for marker in ("failed: ", "Error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    text = " ".join(text.split())
    return (text[:197] + "...") if len(text) > 200 else text or type(exc).__name__


def tail_record(dim: int) -> np.dtype[Any]:
    """One record of a tail file: the row id, then its normalised vector."""
    return np.dtype([("id", "<i8"), ("vector", "<f4", (dim,))])


def read_tail(path: Path, dim: int, size: int, watermark: int) -> np.ndarray | None:
    """The first ``size`` records of a tail file, None when it is short or does not end at
    ``watermark`` (a torn or stale file: the database is replayed instead)."""
    if size <= 0:
        return np.zeros(0, tail_record(dim))
    record = tail_record(dim)
    try:
        if path.stat().st_size < size * record.itemsize:
            return None
        records = np.fromfile(path, dtype=record, count=size)
    except (OSError, ValueError):
        return None
    if len(records) != size or int(records["id"][-1]) != watermark:
        return None
    return records


class StoreSource:
    """The stored vectors of one model as a ``VectorSource`` for ``build_from``: read a
    batch at a time, L2-normalised."""

    def __init__(self, store: Reads, model: str, dim: int, batch: int = BUILD_BATCH) -> None:
        self.store = store
        self.model = model
        self.dim = dim
        self.batch = batch
        self.highest = 0  # the highest row id a pass over the batches has read

    def count(self) -> int:
        """Number of vectors stored for the model."""
        return self.store.counts(self.model)["vectors"]

    def ids(self) -> Iterator[np.ndarray]:
        """Every row id of the model, ascending."""
        yield from self.store.iter_row_ids(self.model, batch=max(self.batch, 100_000))

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row ids, unit vectors) a batch at a time, ascending ids."""
        for ids, vectors in self.store.iter_vectors(self.model, batch=self.batch):
            self.highest = max(self.highest, int(ids[-1]))
            yield ids, l2_normalise(vectors)

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, unit vectors) of the rows of ``ids`` still stored."""
        found, vectors = self.store.vectors_for_rows(np.asarray(ids).tolist())
        if not found.size:
            return found, np.zeros((0, self.dim), np.float32)
        return found, l2_normalise(vectors)


class VectorIndex:
    """One model's vectors: a snapshot (exact or approximate) plus an exact tail."""

    def __init__(self, directory: Path, model: str, dim: int, store: Reads | None = None) -> None:
        self.directory = directory
        self.model = model
        self.dim = dim
        self.watermark = 0
        self.build = BuildReport(type="flat", factory="IDMap2,Flat")
        self.requested = "auto"
        self._store = store
        self._base: Any = None
        self._base_watermark = 0
        self._mmapped = False
        self._stale_base = False  # removals an approximate snapshot cannot apply in place
        self._base_changed = False  # removals applied in memory, not yet on disk
        self._tail: Any = _empty_flat(dim)
        self._tail_saved = 0  # leading tail rows already in the tail file
        self._disk_meta: dict[str, Any] | None = None  # the files' metadata as last read/written
        self._removed: set[int] = set()  # removed since the last save

    @property
    def snapshot_path(self) -> Path:
        """File holding the serialised snapshot."""
        return self.directory / f"{self.model}.faiss"

    @property
    def next_path(self) -> Path:
        """Where a new snapshot waits beside the current one until the metadata names it."""
        return self.directory / f"{self.model}.faiss.next"

    @property
    def tail_path(self) -> Path:
        """File holding the rows added since the snapshot: raw (int64 id, float32 vector)."""
        return self.directory / f"{self.model}.tail"

    @property
    def tail_record(self) -> np.dtype[Any]:
        """One record of the tail file."""
        return tail_record(self.dim)

    @property
    def meta_path(self) -> Path:
        """File holding the model, dimension, build report and watermarks."""
        return self.directory / f"{self.model}.json"

    @property
    def snapshot_size(self) -> int:
        """Vectors in the snapshot."""
        return 0 if self._base is None else int(self._base.ntotal)

    @property
    def tail_size(self) -> int:
        """Vectors in the tail (added since the snapshot)."""
        return int(self._tail.ntotal)

    @property
    def size(self) -> int:
        """Number of vectors in the index."""
        return self.snapshot_size + self.tail_size

    @property
    def exact(self) -> bool:
        """True when every score comes from exact search (no approximate snapshot)."""
        return self.build.type == "flat"

    @classmethod
    def open(cls, directory: Path, model: str, dim: int, store: Reads, *,
             mmap: bool = True) -> VectorIndex:
        """Load the snapshot (memory-mapped) and tail, then replay the store's newer rows."""
        index = cls(directory, model, dim, store)
        index._load(mmap)
        index.catch_up(store)
        return index

    def read_meta(self) -> dict[str, Any] | None:
        """The snapshot's metadata, None when there is none; refuses another model."""
        if not self.meta_path.exists():
            return None
        try:
            meta: dict[str, Any] = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise VectorIndexError(f"index metadata {self.meta_path} is unreadable: {exc}; "
                                   "delete it to rebuild the index from the database") from exc
        if meta.get("model") != self.model or meta.get("dim") != self.dim:
            raise ModelMismatchError(
                f"index {self.snapshot_path} was built with model {meta.get('model')!r} "
                f"({meta.get('dim')}-d), not {self.model!r} ({self.dim}-d); "
                "delete it to rebuild the index from the database")
        return meta

    def _read(self, path: Path, mmap: bool, kind: str = "flat") -> Any:
        import faiss

        # IVF maps its inverted lists; flat and HNSW map their codes (the flags don't mix).
        flags = 0 if not mmap else faiss.IO_FLAG_MMAP if kind == "ivf" else faiss.IO_FLAG_MMAP_IFC
        try:
            return faiss.read_index(str(path), flags)
        except RuntimeError:
            return None  # torn, truncated or missing: the database still has every vector

    def _snapshot_files(self, meta: dict[str, Any]) -> list[Path]:
        """The files that can hold the snapshot ``meta`` describes, to be tried in order: a
        swap the metadata committed may not have renamed its new snapshot yet."""
        return [self.next_path, self.snapshot_path] if meta.get("next") else [self.snapshot_path]

    def _load(self, mmap: bool) -> None:
        for _attempt in range(3):
            meta = self.read_meta()
            if meta is None:
                return
            build = BuildReport.from_json(meta.get("build", meta))
            loaded = None
            for path in self._snapshot_files(meta):
                loaded = self._read(path, mmap, build.type) if path.exists() else None
                if loaded is not None:
                    break
            if self.read_meta() != meta:
                continue  # replaced while it was read (a save or a swap): read it again
            if loaded is not None and loaded.d == self.dim and loaded.ntotal == meta.get("size"):
                break
            return  # torn or lost: the database is replayed instead
        else:
            return
        self.build = build
        self._disk_meta = meta
        self.requested = str(meta.get("requested", "auto"))
        apply_params(loaded, self.build.params)
        self._base, self._mmapped = loaded, mmap
        self._base_watermark = self.watermark = int(meta.get("watermark", 0))
        records = read_tail(self.tail_path, self.dim, int(meta.get("tail_size", 0)),
                            int(meta.get("tail_watermark", 0)))
        if records is not None and len(records):
            self._tail.add_with_ids(np.ascontiguousarray(records["vector"]), records["id"])
            self._tail_saved = len(records)
            self.watermark = max(self.watermark, int(records["id"][-1]))

    def catch_up(self, store: Reads) -> int:
        """Add the store's rows past the watermark; return how many were added."""
        added = 0
        for ids, vectors in store.iter_vectors(self.model, after=self.watermark):
            self.add(ids, vectors)
            added += len(ids)
        return added

    def add_stored(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows this process has just committed (``add``), or replay the store instead
        when they do not follow the watermark without a gap: other workers committed the
        rows in between, and the watermark must not pass them."""
        fresh = np.unique(np.asarray(ids, dtype=np.int64))
        fresh = fresh[fresh > self.watermark]
        if not fresh.size:
            return
        if self._store is None or (int(fresh[0]) == self.watermark + 1
                                   and int(fresh[-1]) - int(fresh[0]) + 1 == fresh.size):
            self.add(ids, vectors)
        else:
            self.catch_up(self._store)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add normalised vectors under their row ids (ids above the watermark only)."""
        ids = np.asarray(ids, dtype=np.int64)
        fresh = ids > self.watermark
        if not fresh.any():
            return
        vectors = l2_normalise(vectors)[fresh]
        if vectors.shape[1] != self.dim:
            raise VectorIndexError(f"vector of dimension {vectors.shape[1]}, index has {self.dim}")
        self._tail.add_with_ids(np.ascontiguousarray(vectors), ids[fresh])
        self.watermark = max(self.watermark, int(ids[fresh].max()))

    def _materialise(self) -> None:
        # A memory-mapped snapshot is read-only (FAISS aborts on writes): load it into memory.
        if self._base is not None and self._mmapped:
            meta = self._disk_meta or {}
            loaded = None
            for path in self._snapshot_files(meta):
                loaded = self._read(path, False, self.build.type) if path.exists() else None
                if loaded is not None:
                    break
            if loaded is None:
                raise VectorIndexError(f"index snapshot {self.snapshot_path} changed or broke "
                                       "while open: run `thumbsearch index rebuild`")
            apply_params(loaded, self.build.params)
            self._base, self._mmapped = loaded, False

    def remove(self, ids: np.ndarray) -> int:
        """Drop vectors by row id (deleted rows); return how many were in the index.

        The watermark stays: row ids are never reused, so replay cannot bring them back.
        Call ``save()`` afterwards to make the removal survive a restart.
        """
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if not wanted.size:
            return 0
        self._removed.update(int(i) for i in wanted)
        try:
            removed = int(self._tail.remove_ids(wanted))
            if removed:
                self._tail_saved = 0  # rows moved: the tail file is written again whole
            if self._base is not None and self.build.type == "hnsw":
                held = np.intersect1d(_index_ids(self._base), wanted)
                removed += int(held.size)
                self._stale_base = self._stale_base or bool(held.size)
            elif self._base is not None:
                self._materialise()
                dropped = int(self._base.remove_ids(wanted))
                removed += dropped
                self._base_changed = self._base_changed or dropped > 0
        except RuntimeError as exc:
            raise VectorIndexError(f"cannot remove vectors from the index: {exc}") from exc
        return removed

    def ids(self) -> np.ndarray:
        """The row ids held, int64 (n,): the snapshot's, then the tail's."""
        parts = [_index_ids(self._tail)]
        if self._base is not None:
            parts.insert(0, _index_ids(self._base))
        return np.concatenate(parts)

    def vector(self, row_id: int) -> np.ndarray:
        """The stored (normalised) vector of one row id, float32 (dim,).

        Exact for the tail and flat snapshots; an approximate snapshot holds codes, so
        its vectors come back only approximately (PCA and quantisation).
        """
        for part in (self._tail, self._base):
            if part is None:
                continue
            try:
                if part is self._base and not self.exact:
                    part.make_direct_map() if hasattr(part, "make_direct_map") else None
                out: np.ndarray = np.asarray(part.reconstruct(int(row_id)), np.float32)
                return out
            except RuntimeError:
                continue
        raise VectorIndexError(f"row {row_id} is not in the index")

    def contains(self, row_id: int, vector: np.ndarray, k: int = 10) -> bool:
        """True when searching ``vector`` finds ``row_id`` in the top ``k`` (the consistency
        check that works for every index type)."""
        _, found = self.search(vector[None, :], k)
        return bool((found[0] == row_id).any())

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosines of candidate rows re-read from the store, best k a query."""
        n = len(queries)
        scores = np.full((n, k), -np.inf, np.float32)
        ids = np.full((n, k), -1, np.int64)
        if self._store is None:
            return scores, ids
        rows, vectors = self._store.vectors_for_rows(np.unique(candidates).tolist())
        if not rows.size:
            return scores, ids
        position = {int(r): i for i, r in enumerate(rows)}
        vectors = l2_normalise(vectors)
        for q, (query, cands) in enumerate(zip(queries, candidates, strict=True)):
            known = np.asarray([c for c in dict.fromkeys(cands.tolist()) if c in position],
                               np.int64)
            if not known.size:
                continue
            found = vectors[[position[int(c)] for c in known]] @ query
            order = np.argsort(-found, kind="stable")[:k]
            scores[q, :order.size], ids[q, :order.size] = found[order], known[order]
        return scores, ids

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores float32 (n, k), row ids int64 (n, k)); missing slots have id -1."""
        import faiss

        queries = np.ascontiguousarray(l2_normalise(queries))
        n = len(queries)
        k = min(k, self.size)
        if k <= 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        threads = faiss.omp_get_max_threads()
        if n <= FEW_QUERIES:  # a lookup or two: starting threads costs more than it saves
            faiss.omp_set_num_threads(1)
        try:
            parts = self._search_parts(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)
        scores = np.concatenate([s for s, _ in parts], axis=1)
        ids = np.concatenate([i for _, i in parts], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_ids = np.take_along_axis(ids, order, axis=1)
        top_scores = np.take_along_axis(scores, order, axis=1)
        return np.where(top_ids >= 0, top_scores, 0.0).astype(np.float32), top_ids

    def _search_parts(self, queries: np.ndarray,
                      k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(scores, ids) of the tail and of the snapshot, each exact, to be merged."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if self.tail_size:
            parts.append(self._tail.search(queries, min(k, self.tail_size)))
        if self.snapshot_size and self.exact:
            parts.append(self._base.search(queries, min(k, self.snapshot_size)))
        elif self.snapshot_size:
            wanted = refine_count(k, self.build.params)
            _, candidates = self._base.search(queries, min(wanted, self.snapshot_size))
            parts.append(self._rerank(queries, candidates, k))
        return parts

    def _tail_limit(self) -> int:
        return int(min(TAIL_MAX, max(TAIL_MIN, TAIL_SHARE * self.snapshot_size)))

    def _needs_build(self) -> bool:
        """True when the snapshot must be built again from the database, not extended:
        its type no longer fits the size, the corpus has doubled since training, or the
        new rows fit the trained PCA and centroids clearly worse than the training set."""
        size = self.size
        wanted = fitting_type(size, self.requested)
        if self._stale_base or wanted != self.build.type:
            return True
        if self.exact or self._base is None:
            return False
        if size > RETRAIN_GROWTH * max(1, self.build.trained_size):
            return True
        if not self.tail_size:
            return False
        tail = self._tail.index.reconstruct_n(0, self.tail_size)
        return drifted(self.build.fit, fit_figures(self._base, tail))

    @contextmanager
    def _saving(self, adopt: bool = True) -> Iterator[None]:
        """Hold the index directory's save lock; adopt another process's newer files."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError as exc:
            full = disk_full(exc, "saving the index", self.directory)
            if full is not None:
                raise full from exc
            raise VectorIndexError(f"cannot save the index to {self.directory}: "
                                   f"{path_problem(exc)}; {_SAVE_FIX}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released with the descriptor, or when we die
            self._finish_swap()
            self._remove_temporaries()
            if adopt:
                self._adopt_newer_files()
            yield
        finally:
            os.close(fd)

    def _finish_swap(self) -> None:
        """Under the lock: finish a swap a killed writer committed (rename its new snapshot,
        then the metadata without the pending name), or delete a new snapshot it never
        committed (the metadata does not name it: the old snapshot is still the index)."""
        try:
            meta: Any = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            meta = None
        pending = isinstance(meta, dict) and bool(meta.get("next"))
        try:
            if not pending:
                self.next_path.unlink(missing_ok=True)
                return
            if self.next_path.exists():
                self._promote()
            held = self._disk_meta
            self._commit({key: value for key, value in meta.items() if key != "next"})
            if held != meta:  # this process holds other files' state: adopting must see it
                self._disk_meta = held
        except OSError as exc:
            raise VectorIndexError(f"cannot finish replacing the index snapshot in "
                                   f"{self.directory}: {exc}") from exc

    def _remove_temporaries(self) -> None:
        """Delete this model's atomic-write temporaries a killed process left (under the lock,
        no write is in progress)."""
        prefix = temporary_prefix(self.model)
        try:
            for path in self.directory.iterdir():
                if path.name.startswith(prefix) and path.name.endswith(TEMPORARY_SUFFIX):
                    path.unlink(missing_ok=True)
        except OSError:
            pass  # a leftover only takes space

    def _adopt_newer_files(self) -> None:
        """When another process saved since this one last read or wrote the files, take its
        files and replay the store past them (every row held here is in the store)."""
        try:
            on_disk: Any = json.loads(self.meta_path.read_text())
        except FileNotFoundError:
            on_disk = None
        except (OSError, ValueError):
            on_disk = {}  # unreadable: never what was written here
        if on_disk == self._disk_meta:
            return
        fresh = VectorIndex(self.directory, self.model, self.dim, self._store)
        try:
            if on_disk:
                fresh._load(mmap=True)
            if self._store is not None:
                fresh.catch_up(self._store)
            usable = self._store is not None and fresh.watermark >= self.watermark
        except VectorIndexError:
            usable = False
        if not usable:
            # Keep what is held here, written whole: the files may not match it any more.
            self._tail_saved = 0
            self._base_changed = self._base_changed or self._base is not None
            self._disk_meta = None
            return
        removed = self._removed
        for name in ("watermark", "build", "requested", "_base", "_base_watermark",
                     "_mmapped", "_stale_base", "_base_changed", "_tail", "_tail_saved",
                     "_disk_meta"):
            setattr(self, name, getattr(fresh, name))
        self._removed = set()
        if removed:
            self.remove(np.fromiter(removed, np.int64, len(removed)))

    def save(self) -> None:
        """Make what was added durable: the tail alone, or a compaction when it has grown.

        Each file is written atomically (temporary file, fsync, rename); the metadata,
        written last, says which sizes and watermarks belong together. Processes sharing
        the directory save one at a time (see the module docstring).
        """
        with self._saving():
            if (self._base is None or self._stale_base or self._base_changed
                    or self.tail_size > self._tail_limit()):
                self._compact()
            else:
                self._write(snapshot=False)

    def compact(self) -> None:
        """Fold the tail into the snapshot (or build it again when its type or training is due)."""
        with self._saving():
            self._compact()

    def _compact(self) -> None:
        if self._needs_build() and self._store is not None and self.size > 0:
            self._rebuild(self._store, self.requested)
            return
        self._materialise()
        base = self._base if self._base is not None else _empty_flat(self.dim)
        if self.tail_size:
            tail_ids = _index_ids(self._tail)
            tail_vectors = self._tail.index.reconstruct_n(0, self.tail_size)
            base.add_with_ids(np.ascontiguousarray(tail_vectors), tail_ids)
        if self._base is None:
            self.build = BuildReport(type="flat", factory="IDMap2,Flat", trained_size=self.size)
        self._base, self._tail, self._tail_saved = base, _empty_flat(self.dim), 0
        self._base_watermark = self.watermark
        self._write(snapshot=True)
        self._base_changed = False

    def rebuild(self, store: Reads, requested: str = "auto", *,
                batch: int = BUILD_BATCH, strict: bool = True) -> BuildReport:
        """Build the snapshot again from every vector in the store (type for its size).

        The vectors are read ``batch`` rows at a time (``StoreSource``): memory is the new
        index plus a bounded working set (a batch, the training sample), never the corpus.
        The new snapshot is written beside the current one, verified, and only then swapped
        in; until that swap every file stays as it was, whatever fails (``VectorIndexError``
        then). A type the corpus is too small for is refused before anything is read
        (``strict``), or built exact (flat) until the corpus reaches its minimum.
        """
        if strict:  # refused before the lock is taken: nothing is touched
            _refuse_small(StoreSource(store, self.model, self.dim).count(), requested)
        with self._saving(adopt=False):  # everything is read from the store anyway
            return self._rebuild(store, requested, batch, strict)

    def _rebuild(self, store: Reads, requested: str, batch: int = BUILD_BATCH,
                 strict: bool = False) -> BuildReport:
        source = StoreSource(store, self.model, self.dim, batch)
        size = source.count()
        if strict:
            _refuse_small(size, requested)
        kind = fitting_type(size, requested)
        try:
            index, report = build_from(source, kind)
            atomic_write(self.next_path, _index_writer(index))
            highest = self._verify(report, source)
        except BaseException as exc:
            self.next_path.unlink(missing_ok=True)  # never named by the metadata: not in use
            if isinstance(exc, OSError):
                full = disk_full(exc, "building the index", self.directory)
                if full is not None:
                    raise full from exc
            if isinstance(exc, Exception) and not isinstance(exc, ThumbsearchError):
                raise VectorIndexError(f"cannot build the {kind} index: {_one_line(exc)}; "
                                       "the current index is untouched") from exc
            raise
        held = {name: getattr(self, name) for name in _STATE}
        self.requested = requested
        self._base, self._mmapped = index, False
        self._stale_base = self._base_changed = False
        self.build = report
        self._tail, self._tail_saved = _empty_flat(self.dim), 0
        self.watermark = self._base_watermark = max(self.watermark, highest)
        try:
            self._write(snapshot=True, written=True)
        except BaseException:
            for name, value in held.items():  # still the files' state when nothing committed
                setattr(self, name, value)
            raise
        self.catch_up(store)  # rows stored after the pass the index was filled in
        return report

    def _verify(self, report: BuildReport, source: VectorSource) -> int:
        """Check the new snapshot written at ``next_path`` before it replaces the current one:
        it reads back, holds exactly the database's rows up to its highest id, and finds
        stored vectors as themselves. Returns that highest id (0 when empty)."""
        untouched = "the current index is untouched"
        loaded = self._read(self.next_path, True, report.type)
        if loaded is None or loaded.d != self.dim or loaded.ntotal != report.trained_size:
            raise VectorIndexError(f"the new {report.type} index did not read back whole from "
                                   f"{self.next_path}; {untouched}")
        held = _IdDigest()
        for chunk in _id_chunks(loaded):
            held.update(chunk)
        stored = _IdDigest()
        probes: list[int] = []
        step = max(1, held.count // SELF_PROBES)
        for ids in source.ids():  # ascending: stop past the highest id the index holds
            within = ids[ids <= held.highest]
            spread = (np.arange(len(within)) + stored.count) % step == 0
            probes.extend(within[spread].tolist())
            stored.update(within)
            if len(within) < len(ids):
                break
        if held != stored:
            raise VectorIndexError(
                f"the database changed during the build (the new index holds {held.count} "
                f"rows up to row {held.highest}, the database {stored.count}): run it again; "
                f"{untouched}")
        found, vectors = source.rows(np.asarray(probes[:SELF_PROBES + 1], np.int64))
        if len(found):
            apply_params(loaded, report.params)
            width = RECALL_K if report.type == "flat" else refine_count(RECALL_K, report.params)
            _, answers = loaded.search(np.ascontiguousarray(vectors, np.float32),
                                       min(width, int(loaded.ntotal)))
            hits = sum(int(row_id) in row.tolist() for row_id, row in zip(found, answers,
                                                                        strict=True))
            if hits < SELF_FOUND * len(found):
                raise VectorIndexError(
                    f"the new {report.type} index found only {hits} of {len(found)} stored "
                    f"vectors as themselves; {untouched}")
        return held.highest

    def _meta(self) -> dict[str, Any]:
        """The metadata of what is held: sizes and watermarks that belong together."""
        return {"model": self.model, "dim": self.dim, "format": 2,
                "type": self.build.type, "requested": self.requested,
                "size": self.snapshot_size, "watermark": self._base_watermark,
                "tail_size": self.tail_size, "tail_watermark": self.watermark,
                "build": self.build.to_json()}

    def _commit(self, meta: dict[str, Any]) -> None:
        """Write the metadata (atomically): the step that makes the files it names current."""
        atomic_write(self.meta_path, json.dumps(meta, indent=1).encode())
        self._disk_meta = json.loads(json.dumps(meta))  # as a reader parses it back

    def _promote(self) -> None:
        """Give the committed new snapshot the snapshot's name (the old one goes with it)."""
        os.replace(self.next_path, self.snapshot_path)
        sync_directory(self.directory)

    def _write(self, snapshot: bool, written: bool = False) -> None:
        """Save what is held. A new snapshot (already at ``next_path`` when ``written``) is
        swapped in in three steps, each leaving a readable index should the process die:
        the metadata naming it as pending, its rename over the old one, the metadata."""
        committed = False
        try:
            if snapshot and not written:
                atomic_write(self.next_path, _index_writer(self._base))
            if self.tail_size:
                self._append_tail()
            meta = self._meta()
            if snapshot:
                self._commit({**meta, "next": self.next_path.name})
                committed = True
                self._promote()
            self._commit(meta)
            self._removed = set()
            if not self.tail_size:
                self.tail_path.unlink(missing_ok=True)
        except OSError as exc:
            if snapshot and not committed:
                self.next_path.unlink(missing_ok=True)
            full = disk_full(exc, "saving the index", self.directory)
            if full is not None:
                raise full from exc
            raise VectorIndexError(f"cannot save the index to {self.directory}: "
                                   f"{path_problem(exc)}; {_SAVE_FIX}") from exc

    def _append_tail(self) -> None:
        """Append the tail rows not yet in the tail file (after cutting any torn end)."""
        record = self.tail_record
        fresh = self.tail_size - self._tail_saved
        if fresh <= 0:
            return
        rows = np.zeros(fresh, dtype=record)
        rows["id"] = _index_ids(self._tail)[self._tail_saved:]
        rows["vector"] = self._tail.index.reconstruct_n(self._tail_saved, fresh)
        self.tail_path.parent.mkdir(parents=True, exist_ok=True)
        with self.tail_path.open("r+b" if self.tail_path.exists() else "wb") as handle:
            handle.truncate(self._tail_saved * record.itemsize)
            handle.seek(self._tail_saved * record.itemsize)
            handle.write(rows.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        self._tail_saved = self.tail_size

    def info(self) -> IndexInfo:
        """Type, parameters, measured recall, sizes and memory of the index."""
        path = self.snapshot_path
        on_disk = sum(p.stat().st_size for p in (path, self.tail_path) if p.exists())
        base_bytes = path.stat().st_size if path.exists() and self._base is not None else 0
        per_vector = base_bytes / self.snapshot_size if self.snapshot_size else 0.0
        memory = base_bytes + self.tail_size * (self.dim * 4 + 8)
        return IndexInfo(type=self.build.type, model=self.model, dim=self.dim, size=self.size,
                         watermark=self.watermark, snapshot=str(path), snapshot_bytes=on_disk,
                         snapshot_size=self.snapshot_size, tail_size=self.tail_size,
                         factory=self.build.factory, params=dict(self.build.params),
                         recall_at_10=self.build.recall_at_10,
                         bytes_per_vector=round(per_vector, 1), memory_bytes=memory,
                         mmap=self._mmapped)
