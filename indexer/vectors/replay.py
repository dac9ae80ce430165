"""Catching up from the database: its rows past the watermark go into the exact tail."""

from __future__ import annotations

import dataclasses

import numpy as np

from indexer.errors import VectorIndexError
from indexer.store.reads import Reads
from indexer.vectors.exact import l2_normalise
from indexer.vectors.files import IndexFiles
from indexer.vectors.held import Held

__all__ = ["add", "add_stored", "adopt_newer_files", "catch_up", "caught_up_copy"]


def add(held: Held, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add normalised vectors under their row ids (ids above the watermark only)."""
    ids = np.asarray(ids, dtype=np.int64)
    fresh = ids > held.watermark
    if not fresh.any():
        return
    vectors = l2_normalise(vectors)[fresh]
    if vectors.shape[1] != held.dim:
        raise VectorIndexError(f"vector of dimension {vectors.shape[1]}, index has {held.dim}")
    held.tail.add_with_ids(np.ascontiguousarray(vectors), ids[fresh])
    held.watermark = max(held.watermark, int(ids[fresh].max()))


def catch_up(held: Held, reads: Reads, model: str) -> int:
    """Add the database's rows of ``model`` past the watermark; return how many were added."""
    added = 0
    for ids, vectors in reads.iter_vectors(model, after=held.watermark):
        add(held, ids, vectors)
        added += len(ids)
    return added


def caught_up_copy(held: Held, reads: Reads, model: str) -> tuple[Held, int]:
    """``held`` with the database's newer rows added to a copy of its tail, and how many;
    ``held`` itself (untouched) when there are none. The snapshot is shared, not copied."""
    import faiss

    fresh: Held | None = None
    added = 0
    for ids, vectors in reads.iter_vectors(model, after=held.watermark):
        if fresh is None:
            fresh = dataclasses.replace(held, tail=faiss.clone_index(held.tail))
        add(fresh, ids, vectors)
        added += len(ids)
    return (held if fresh is None else fresh), added


def add_stored(held: Held, reads: Reads | None, model: str, ids: np.ndarray,
               vectors: np.ndarray) -> None:
    """Add rows this process has just committed, or replay the database instead when they
    do not follow the watermark without a gap: other workers committed the rows in
    between, and the watermark must not pass them."""
    fresh = np.unique(np.asarray(ids, dtype=np.int64))
    fresh = fresh[fresh > held.watermark]
    if not fresh.size:
        return
    if reads is None or (int(fresh[0]) == held.watermark + 1
                         and int(fresh[-1]) - int(fresh[0]) + 1 == fresh.size):
        add(held, ids, vectors)
    else:
        catch_up(held, reads, model)


def adopt_newer_files(files: IndexFiles, held: Held, reads: Reads | None) -> Held:
    """When another process saved since ``held`` was last read or written, its files caught
    up from the database (every row held here is in the database); else ``held``, marked to
    be written whole when the files may no longer match it."""
    on_disk = files.meta_on_disk()
    if on_disk == held.disk_meta:
        return held
    try:
        fresh = files.load(mmap=True) if on_disk else Held(held.dim)
        if reads is not None:
            catch_up(fresh, reads, files.model)
        usable = reads is not None and fresh.watermark >= held.watermark
    except VectorIndexError:
        usable = False
    if usable:
        return fresh
    held.tail_saved = 0
    held.deleted_saved = -1  # the deleted list is written again too
    held.base_changed = held.base_changed or held.base is not None
    held.disk_meta = None
    return held
