"""Keeping the snapshot fit: folding the tail into it, deciding when it must be built again
from the database, and checking a new one before it replaces the old."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ThumbsearchError, VectorIndexError, disk_full
from indexer.store.reads import Reads
from indexer.vectors.exact import l2_normalise
from indexer.vectors.files import IndexFiles
from indexer.vectors.held import Held, empty_flat, index_ids
from indexer.vectors.types import (
    BUILD_BATCH,
    RECALL_K,
    BuildReport,
    VectorSource,
    apply_params,
    choose_type,
    drifted,
    fit_figures,
    fitting_type,
    refine_count,
    refined,
    too_small,
)

__all__ = ["DELETED_SHARE", "RETRAIN_GROWTH", "SELF_FOUND", "SELF_PROBES", "TAIL_MAX",
           "TAIL_MIN", "TAIL_SHARE", "StoreSource", "build_failure", "fold_tail", "needs_build",
           "refuse_small", "tail_limit", "too_many_deleted", "verify"]

TAIL_MIN = 2_000  # the tail may hold this many rows before it is folded in...
TAIL_SHARE = 0.02  # ...or this share of the snapshot, whichever is more,
TAIL_MAX = 50_000  # but never more than this (replay and exact search of the tail stay cheap)
RETRAIN_GROWTH = 2.0  # an approximate snapshot is trained again once the corpus doubles
# A refined snapshot is built again once this share of its rows is deleted (until then
# searches pass them over; their codes still take memory).
DELETED_SHARE = 0.2
SELF_PROBES = 20  # stored vectors a new snapshot must find (as themselves) before it is used
SELF_FOUND = 0.9  # share of them it must find: approximate kinds may miss the odd one
_ID_CHUNK = 1 << 20  # ids summed at once when a snapshot's ids are checked


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


def tail_limit(held: Held) -> int:
    """How many rows the tail may hold before a save folds it into the snapshot."""
    return int(min(TAIL_MAX, max(TAIL_MIN, TAIL_SHARE * held.snapshot_size)))


def too_many_deleted(held: Held) -> bool:
    """True when a refined snapshot's deleted rows pass ``DELETED_SHARE`` of it."""
    return bool(held.deleted.size > DELETED_SHARE * held.snapshot_size)


def needs_build(held: Held) -> bool:
    """True when the snapshot must be built again from the database, not extended:
    its type no longer fits the size, the corpus has doubled since training, or the
    new rows fit the trained PCA and centroids clearly worse than the training set."""
    size = held.size
    wanted = fitting_type(size, held.requested)
    if held.stale_base or wanted != held.build.type:
        return True
    if too_many_deleted(held):
        return True
    if held.exact or held.base is None:
        return False
    if size > RETRAIN_GROWTH * max(1, held.build.trained_size):
        return True
    if not held.tail_size:
        return False
    tail = held.tail.index.reconstruct_n(0, held.tail_size)
    return drifted(held.build.fit, fit_figures(held.base, tail))


def fold_tail(held: Held) -> None:
    """Move the tail's rows into the snapshot (a flat one when there is none yet); the
    snapshot must be in memory, not mapped."""
    base = held.base if held.base is not None else empty_flat(held.dim)
    if held.tail_size:
        tail_ids = index_ids(held.tail)
        tail_vectors = held.tail.index.reconstruct_n(0, held.tail_size)
        base.add_with_ids(np.ascontiguousarray(tail_vectors), tail_ids)
    if held.base is None:
        held.build = BuildReport(type="flat", factory="IDMap2,Flat", trained_size=held.size)
    held.base, held.tail, held.tail_saved = base, empty_flat(held.dim), 0
    held.base_watermark = held.watermark


def refuse_small(size: int, requested: str) -> None:
    """VectorIndexError when the type asked for cannot be trained on ``size`` vectors."""
    reason = too_small(choose_type(size, requested), size)
    if reason is not None:
        raise VectorIndexError(f"{reason}: use `--type auto` (exact search at this size) or "
                               "add vectors first; the current index is untouched")


def _one_line(exc: BaseException) -> str:
    """An exception's message on one readable line (FAISS's carry the C++ call site first)."""
    text = str(exc)
    for marker in ("failed: ", "Error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    text = " ".join(text.split())
    return (text[:197] + "...") if len(text) > 200 else text or type(exc).__name__


def build_failure(exc: BaseException, kind: str, directory: Path) -> ThumbsearchError | None:
    """What a failed build of a ``kind`` snapshot in ``directory`` is for the user (a full
    disk, or one VectorIndexError), None when ``exc`` is to propagate as it is."""
    if isinstance(exc, OSError):
        full = disk_full(exc, "building the index", directory)
        if full is not None:
            return full
    if isinstance(exc, Exception) and not isinstance(exc, ThumbsearchError):
        return VectorIndexError(f"cannot build the {kind} index: {_one_line(exc)}; "
                                "the current index is untouched")
    return None


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


def verify(files: IndexFiles, report: BuildReport, source: VectorSource) -> int:
    """Check the new snapshot written at ``next_path`` before it replaces the current one:
    it reads back, holds exactly the database's rows up to its highest id, and finds
    stored vectors as themselves. Returns that highest id (0 when empty)."""
    untouched = "the current index is untouched"
    loaded = files.read_snapshot(files.next_path, True, report.type, refined(report.factory))
    if loaded is None or loaded.d != files.dim or loaded.ntotal != report.trained_size:
        raise VectorIndexError(f"the new {report.type} index did not read back whole from "
                               f"{files.next_path}; {untouched}")
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
