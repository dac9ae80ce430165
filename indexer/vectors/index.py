"""The FAISS index: a snapshot on disk, a tail of newer rows, and a watermark (the protocol
is drawn in docs/architecture.md, Storage)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import VectorIndexError
from indexer.store.reads import Reads
from indexer.vectors import replay
from indexer.vectors import search as searching
from indexer.vectors.compaction import (
    TAIL_MIN,
    StoreSource,
    build_failure,
    fold_tail,
    needs_build,
    refuse_small,
    tail_limit,
    too_many_deleted,
    verify,
)
from indexer.vectors.exact import l2_normalise
from indexer.vectors.files import IndexFiles, read_tail, save_error, tail_record
from indexer.vectors.held import Held, codes_bytes, index_ids
from indexer.vectors.types import BUILD_BATCH, BuildReport, VectorSource, build_from, fitting_type

__all__ = ["TAIL_MIN", "IndexInfo", "StoreSource", "VectorIndex", "l2_normalise", "read_tail",
           "tail_record"]


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
    codes_bytes: int = 0  # the snapshot's re-scoring codes of the full vectors (0: none)
    deleted: int = 0  # rows deleted since the snapshot was built, passed over by searches


class VectorIndex:
    """One model's vectors: a snapshot (exact or approximate) plus an exact tail.

    Composes the files on disk (``indexer.vectors.files``), what is held in memory
    (``held``), replay from the database (``replay``), search (``search``) and the upkeep
    of the snapshot (``compaction``).

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
    the lock that serialises those inserts
    (``indexer.store.serialise.serialise_embedding_inserts``: a transaction-scoped advisory
    lock on PostgreSQL, SQLite's write lock), so ids commit in order even while several
    workers on several hosts store vectors at once. A worker adds the rows it just stored
    directly only when they follow its watermark without a gap; otherwise other workers
    committed rows in between, and it replays the database instead (``add_stored``), so its
    watermark never passes a row it does not hold.

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

    def __init__(self, directory: Path, model: str, dim: int, store: Reads | None = None) -> None:
        self.directory = directory
        self.model = model
        self.dim = dim
        self.reads = store  # the database the index replays from and re-ranks with
        self.files = IndexFiles(directory, model, dim)
        self._held = Held(dim)
        self._removed: set[int] = set()  # removed since the last save

    @property
    def watermark(self) -> int:
        """The highest row id held."""
        return self._held.watermark

    @property
    def build(self) -> BuildReport:
        """How the snapshot was built."""
        return self._held.build

    @property
    def requested(self) -> str:
        """The index type asked for (auto: by corpus size)."""
        return self._held.requested

    @property
    def snapshot_path(self) -> Path:
        """File holding the serialised snapshot."""
        return self.files.snapshot_path

    @property
    def next_path(self) -> Path:
        """Where a new snapshot waits beside the current one until the metadata names it."""
        return self.files.next_path

    @property
    def tail_path(self) -> Path:
        """File holding the rows added since the snapshot: raw (int64 id, float32 vector)."""
        return self.files.tail_path

    @property
    def tail_record(self) -> np.dtype[Any]:
        """One record of the tail file."""
        return tail_record(self.dim)

    @property
    def meta_path(self) -> Path:
        """File holding the model, dimension, build report and watermarks."""
        return self.files.meta_path

    @property
    def snapshot_size(self) -> int:
        """Vectors in the snapshot."""
        return self._held.snapshot_size

    @property
    def tail_size(self) -> int:
        """Vectors in the tail (added since the snapshot)."""
        return self._held.tail_size

    @property
    def size(self) -> int:
        """Number of vectors in the index."""
        return self._held.size

    @property
    def exact(self) -> bool:
        """True when every score comes from exact search (no approximate snapshot)."""
        return self._held.exact

    @property
    def _tail(self) -> Any:
        """The exact FAISS index of the tail."""
        return self._held.tail

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
        return self.files.read_meta()

    def _load(self, mmap: bool) -> None:
        """Hold what the files hold (nothing when they are torn or lost)."""
        self._held = self.files.load(mmap)

    def catch_up(self, store: Reads) -> int:
        """Add the store's rows past the watermark; return how many were added."""
        return replay.catch_up(self._held, store, self.model)

    def refresh(self, store: Reads) -> int:
        """Catch up aside, for an index other threads search: the store's newer rows go
        into a copy of the tail, which replaces what is held in one assignment, so a search
        already running keeps the state it started with. Returns how many were added.

        Callers serialise refreshes among themselves (two would each copy the same tail)."""
        fresh, added = replay.caught_up_copy(self._held, store, self.model)
        self._held = fresh
        return added

    def add_stored(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows this process has just committed (``add``), or replay the store instead
        when they do not follow the watermark without a gap: other workers committed the
        rows in between, and the watermark must not pass them."""
        replay.add_stored(self._held, self.reads, self.model, ids, vectors)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add normalised vectors under their row ids (ids above the watermark only)."""
        replay.add(self._held, ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Drop vectors by row id (deleted rows); return how many were in the index.

        The watermark stays: row ids are never reused, so replay cannot bring them back.
        Call ``save()`` afterwards to make the removal survive a restart.
        """
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if not wanted.size:
            return 0
        self._removed.update(int(i) for i in wanted)
        held = self._held
        try:
            removed = int(held.tail.remove_ids(wanted))
            if removed:
                held.tail_saved = 0  # rows moved: the tail file is written again whole
            if held.base is not None and held.refined:
                # The re-scoring codes cannot drop a vector in place: searches pass the
                # deleted ids over (``search.live_params``); the save writes their list.
                found = np.setdiff1d(np.intersect1d(index_ids(held.base), wanted),
                                     held.deleted, assume_unique=True)
                removed += int(found.size)
                if found.size:
                    held.deleted = np.union1d(held.deleted, found)
            elif held.base is not None and held.build.type == "hnsw":
                # HNSW cannot drop a vector in place: the snapshot is built again at the
                # next save; until then the database read drops the rows.
                found = np.intersect1d(index_ids(held.base), wanted)
                removed += int(found.size)
                held.stale_base = held.stale_base or bool(found.size)
            elif held.base is not None:
                self.files.materialise(held)
                dropped = int(held.base.remove_ids(wanted))
                removed += dropped
                held.base_changed = held.base_changed or dropped > 0
        except RuntimeError as exc:
            raise VectorIndexError(f"cannot remove vectors from the index: {exc}") from exc
        return removed

    def ids(self) -> np.ndarray:
        """The row ids held, int64 (n,): the snapshot's (less its deleted rows), then the
        tail's."""
        parts = [index_ids(self._held.tail)]
        if self._held.base is not None:
            held = index_ids(self._held.base)
            if self._held.deleted.size:
                held = held[np.isin(held, self._held.deleted, invert=True)]
            parts.insert(0, held)
        return np.concatenate(parts)

    def vector(self, row_id: int) -> np.ndarray:
        """The stored (normalised) vector of one row id, float32 (dim,).

        Exact for the tail and flat snapshots; an approximate snapshot holds codes, so
        its vectors come back only approximately (PCA and quantisation).
        """
        return searching.vector(self._held, row_id)

    def contains(self, row_id: int, vector: np.ndarray, k: int = 10) -> bool:
        """True when searching ``vector`` finds ``row_id`` in the top ``k`` (the consistency
        check that works for every index type)."""
        _, found = self.search(vector[None, :], k)
        return bool((found[0] == row_id).any())

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores float32 (n, k), row ids int64 (n, k)); missing slots have id -1."""
        return searching.search(self._held, self.reads, queries, k)

    @contextmanager
    def _saving(self, adopt: bool = True) -> Iterator[None]:
        """Hold the index directory's save lock; adopt another process's newer files."""
        with self.files.lock():
            swapped = self.files.finish_swap()
            if swapped is not None and self._held.disk_meta == swapped[0]:
                self._held.disk_meta = swapped[1]  # the swap was this process's own
            self.files.remove_temporaries()
            if adopt:
                self._adopt_newer_files()
            yield

    def _adopt_newer_files(self) -> None:
        """When another process saved since this one last read or wrote the files, take its
        files and replay the store past them (every row held here is in the store)."""
        fresh = replay.adopt_newer_files(self.files, self._held, self.reads)
        if fresh is self._held:
            return
        self._held, removed, self._removed = fresh, self._removed, set()
        if removed:
            self.remove(np.fromiter(removed, np.int64, len(removed)))

    def save(self) -> None:
        """Make what was added durable: the tail alone, or a compaction when it has grown.

        Each file is written atomically (temporary file, fsync, rename); the metadata,
        written last, says which sizes and watermarks belong together. Processes sharing
        the directory save one at a time (see the class docstring).
        """
        with self._saving():
            held = self._held
            if (held.base is None or held.stale_base or held.base_changed
                    or held.tail_size > tail_limit(held) or too_many_deleted(held)):
                self._compact()
            else:
                self._write(snapshot=False)

    def compact(self) -> None:
        """Fold the tail into the snapshot (or build it again when its type or training is due)."""
        with self._saving():
            self._compact()

    def _compact(self) -> None:
        held = self._held
        if needs_build(held) and self.reads is not None and held.size > 0:
            self._rebuild(self.reads, held.requested)
            return
        self.files.materialise(held)
        fold_tail(held)
        self._write(snapshot=True)
        held.base_changed = False

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
            refuse_small(StoreSource(store, self.model, self.dim).count(), requested)
        with self._saving(adopt=False):  # everything is read from the store anyway
            return self._rebuild(store, requested, batch, strict)

    def _rebuild(self, store: Reads, requested: str, batch: int = BUILD_BATCH,
                 strict: bool = False) -> BuildReport:
        source = StoreSource(store, self.model, self.dim, batch)
        size = source.count()
        if strict:
            refuse_small(size, requested)
        kind = fitting_type(size, requested)
        try:
            index, report = build_from(source, kind)
            self.files.write_next(index)
            highest = self._verify(report, source)
        except BaseException as exc:
            self.next_path.unlink(missing_ok=True)  # never named by the metadata: not in use
            failure = build_failure(exc, kind, self.directory)
            if failure is None:
                raise
            raise failure from exc
        before = self._held
        watermark = max(before.watermark, highest)
        self._held = Held(self.dim, watermark=watermark, build=report, requested=requested,
                          base=index, base_watermark=watermark, disk_meta=before.disk_meta)
        try:
            self._write(snapshot=True, written=True)
        except BaseException:
            self._held = before  # still the files' state when nothing committed
            raise
        self.catch_up(store)  # rows stored after the pass the index was filled in
        return report

    def _verify(self, report: BuildReport, source: VectorSource) -> int:
        """Check the new snapshot at ``next_path`` before it replaces the current one;
        returns the highest row id it holds (see ``compaction.verify``)."""
        return verify(self.files, report, source)

    def _commit(self, meta: dict[str, Any]) -> None:
        """Write the metadata (atomically): the step that makes the files it names current."""
        self._held.disk_meta = self.files.commit(meta)

    def _promote(self) -> None:
        """Give the committed new snapshot the snapshot's name (the old one goes with it)."""
        self.files.promote()

    def _write(self, snapshot: bool, written: bool = False) -> None:
        """Save what is held. A new snapshot (already at ``next_path`` when ``written``) is
        swapped in in three steps, each leaving a readable index should the process die:
        the metadata naming it as pending, its rename over the old one, the metadata."""
        held = self._held
        committed = False
        try:
            if snapshot and not written:
                self.files.write_next(held.base)
            if held.tail_size:
                self.files.append_tail(held)
            self.files.write_deleted(held)
            meta = held.meta(self.model)
            if snapshot:
                self._commit({**meta, "next": self.next_path.name})
                committed = True
                self._promote()
            self._commit(meta)
            self._removed = set()
            if not held.tail_size:
                self.tail_path.unlink(missing_ok=True)
            if not held.deleted.size:
                self.files.deleted_path.unlink(missing_ok=True)
        except OSError as exc:
            if snapshot and not committed:
                self.next_path.unlink(missing_ok=True)
            raise save_error(exc, self.directory) from exc

    def info(self) -> IndexInfo:
        """Type, parameters, measured recall, sizes and memory of the index."""
        path = self.snapshot_path
        held = self._held
        on_disk = sum(p.stat().st_size for p in (path, self.tail_path) if p.exists())
        base_bytes = path.stat().st_size if path.exists() and held.base is not None else 0
        per_vector = base_bytes / held.snapshot_size if held.snapshot_size else 0.0
        memory = base_bytes + held.tail_size * (self.dim * 4 + 8)
        return IndexInfo(type=held.build.type, model=self.model, dim=self.dim, size=held.size,
                         watermark=held.watermark, snapshot=str(path), snapshot_bytes=on_disk,
                         snapshot_size=held.snapshot_size, tail_size=held.tail_size,
                         factory=held.build.factory, params=dict(held.build.params),
                         recall_at_10=held.build.recall_at_10,
                         bytes_per_vector=round(per_vector, 1), memory_bytes=memory,
                         mmap=held.mmapped, codes_bytes=codes_bytes(held),
                         deleted=int(held.deleted.size))
