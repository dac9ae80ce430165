"""The index's files (snapshot, tail, metadata): their formats, the steps of a swap, and the
lock that makes processes sharing a data directory save one at a time."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from indexer.atomic import TEMPORARY_SUFFIX, atomic_write, sync_directory, temporary_prefix
from indexer.errors import ModelMismatchError, ThumbsearchError, VectorIndexError, disk_full
from indexer.vectors.held import Held, index_ids
from indexer.vectors.types import BuildReport, apply_params, refined
from indexer.writable import path_problem

__all__ = ["IndexFiles", "indexed_models", "read_tail", "save_error", "tail_record"]

# The database holds every vector: the next open replays what the index could not save.
_SAVE_FIX = ("make it writable, or set THUMBSEARCH_HOME to a writable directory (nothing "
             "stored was lost: the index is rebuilt from the database)")


def indexed_models(directory: Path) -> list[str]:
    """Model ids with an index snapshot in ``directory`` (from their metadata files), sorted;
    unreadable or foreign files are skipped: this only tells which models a corpus holds."""
    models = set()
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            if path.stat().st_size > 1_000_000:
                continue
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("model") == path.stem:
            models.add(path.stem)
    return sorted(models)


def save_error(exc: OSError, directory: Path) -> ThumbsearchError:
    """What a failed save of the index to ``directory`` is: a full disk, or an unusable path."""
    full = disk_full(exc, "saving the index", directory)
    if full is not None:
        return full
    return VectorIndexError(f"cannot save the index to {directory}: {path_problem(exc)}; "
                            f"{_SAVE_FIX}")


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


class IndexFiles:
    """One model's index files in a directory."""

    def __init__(self, directory: Path, model: str, dim: int) -> None:
        self.directory = directory
        self.model = model
        self.dim = dim

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
    def deleted_path(self) -> Path:
        """File holding the row ids a refined snapshot still holds but the database deleted
        (raw ascending int64): searches pass them over."""
        return self.directory / f"{self.model}.deleted"

    @property
    def meta_path(self) -> Path:
        """File holding the model, dimension, build report and watermarks."""
        return self.directory / f"{self.model}.json"

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

    def meta_on_disk(self) -> Any:
        """The metadata as another process may have left it: None when there is none, ``{}``
        when it is unreadable (never what was written here)."""
        try:
            return json.loads(self.meta_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def read_snapshot(self, path: Path, mmap: bool, kind: str = "flat",
                      codes: bool = False) -> Any:
        """The FAISS index in ``path`` (memory-mapped when ``mmap``; ``codes``: an IVF with
        re-scoring codes, mapped too), None when it cannot be read (torn, truncated or
        missing: the database still has every vector)."""
        import faiss

        # IVF maps its inverted lists, and its re-scoring codes when it has them (the two
        # flags together fail on an IVF without them); flat and HNSW map their codes.
        ivf = faiss.IO_FLAG_MMAP | (faiss.IO_FLAG_MMAP_IFC if codes else 0)
        flags = 0 if not mmap else ivf if kind == "ivf" else faiss.IO_FLAG_MMAP_IFC
        try:
            return faiss.read_index(str(path), flags)
        except RuntimeError:
            return None

    def _snapshot_files(self, meta: dict[str, Any]) -> list[Path]:
        """The files that can hold the snapshot ``meta`` describes, to be tried in order: a
        swap the metadata committed may not have renamed its new snapshot yet."""
        return [self.next_path, self.snapshot_path] if meta.get("next") else [self.snapshot_path]

    def _first_snapshot(self, meta: dict[str, Any], mmap: bool, build: BuildReport) -> Any:
        for path in self._snapshot_files(meta):
            loaded = (self.read_snapshot(path, mmap, build.type, refined(build.factory))
                      if path.exists() else None)
            if loaded is not None:
                return loaded
        return None

    def load(self, mmap: bool) -> Held:
        """What the files hold (snapshot memory-mapped when ``mmap``, then the tail); empty
        when there are none or they are torn or lost (the database is replayed instead)."""
        held = Held(self.dim)
        for _attempt in range(3):
            meta = self.read_meta()
            if meta is None:
                return held
            build = BuildReport.from_json(meta.get("build", meta))
            loaded = self._first_snapshot(meta, mmap, build)
            if self.read_meta() != meta:
                continue  # replaced while it was read (a save or a swap): read it again
            if loaded is not None and loaded.d == self.dim and loaded.ntotal == meta.get("size"):
                break
            return held
        else:
            return held
        held.build = build
        held.disk_meta = meta
        held.requested = str(meta.get("requested", "auto"))
        apply_params(loaded, build.params)
        held.base, held.mmapped = loaded, mmap
        held.base_watermark = held.watermark = int(meta.get("watermark", 0))
        if meta.get("deleted"):
            held.deleted = self.read_deleted()
            held.deleted_saved = int(held.deleted.size)
        records = read_tail(self.tail_path, self.dim, int(meta.get("tail_size", 0)),
                            int(meta.get("tail_watermark", 0)))
        if records is not None and len(records):
            held.tail.add_with_ids(np.ascontiguousarray(records["vector"]), records["id"])
            held.tail_saved = len(records)
            held.watermark = max(held.watermark, int(records["id"][-1]))
        return held

    def materialise(self, held: Held) -> None:
        """Load a memory-mapped snapshot into memory (FAISS aborts on writes to a mapped one)."""
        if held.base is None or not held.mmapped:
            return
        loaded = self._first_snapshot(held.disk_meta or {}, False, held.build)
        if loaded is None:
            raise VectorIndexError(f"index snapshot {self.snapshot_path} changed or broke "
                                   "while open: run `thumbsearch index rebuild`")
        apply_params(loaded, held.build.params)
        held.base, held.mmapped = loaded, False

    def write_next(self, index: Any) -> None:
        """Write a new snapshot beside the current one (atomically, streamed)."""
        atomic_write(self.next_path, _index_writer(index))

    def append_tail(self, held: Held) -> None:
        """Append the tail rows not yet in the tail file (after cutting any torn end)."""
        record = tail_record(self.dim)
        fresh = held.tail_size - held.tail_saved
        if fresh <= 0:
            return
        rows = np.zeros(fresh, dtype=record)
        rows["id"] = index_ids(held.tail)[held.tail_saved:]
        rows["vector"] = held.tail.index.reconstruct_n(held.tail_saved, fresh)
        self.tail_path.parent.mkdir(parents=True, exist_ok=True)
        with self.tail_path.open("r+b" if self.tail_path.exists() else "wb") as handle:
            handle.truncate(held.tail_saved * record.itemsize)
            handle.seek(held.tail_saved * record.itemsize)
            handle.write(rows.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        held.tail_saved = held.tail_size

    def read_deleted(self) -> np.ndarray:
        """The deleted row ids on disk (ascending; empty when the file is missing or torn:
        the database read of a lookup's rows still drops deleted ones)."""
        try:
            raw = self.deleted_path.read_bytes()
        except OSError:
            return np.zeros(0, np.int64)
        if len(raw) % 8:
            return np.zeros(0, np.int64)
        return np.unique(np.frombuffer(raw, dtype="<i8").astype(np.int64))

    def write_deleted(self, held: Held) -> None:
        """Write the snapshot's deleted row ids (atomically; before the metadata naming their
        count). A file listing more than the metadata says is harmless: row ids are never
        reused, and every id in it is gone from the database."""
        if held.deleted.size == held.deleted_saved:
            return
        if held.deleted.size:
            atomic_write(self.deleted_path, held.deleted.astype("<i8").tobytes())
        held.deleted_saved = int(held.deleted.size)

    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Write the metadata (atomically): the step that makes the files it names current.
        Returns it as a reader parses it back."""
        atomic_write(self.meta_path, json.dumps(meta, indent=1).encode())
        parsed: dict[str, Any] = json.loads(json.dumps(meta))
        return parsed

    def promote(self) -> None:
        """Give the committed new snapshot the snapshot's name (the old one goes with it)."""
        os.replace(self.next_path, self.snapshot_path)
        sync_directory(self.directory)

    def finish_swap(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Under the lock: finish a swap a killed writer committed (rename its new snapshot,
        then the metadata without the pending name), or delete a new snapshot it never
        committed (the metadata does not name it: the old snapshot is still the index).
        Returns (the pending metadata, the metadata committed) when a swap was finished."""
        try:
            meta: Any = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            meta = None
        pending = isinstance(meta, dict) and bool(meta.get("next"))
        try:
            if not pending:
                self.next_path.unlink(missing_ok=True)
                return None
            if self.next_path.exists():
                self.promote()
            return meta, self.commit({key: value for key, value in meta.items()
                                      if key != "next"})
        except OSError as exc:
            raise VectorIndexError(f"cannot finish replacing the index snapshot in "
                                   f"{self.directory}: {exc}") from exc

    def remove_temporaries(self) -> None:
        """Delete this model's atomic-write temporaries a killed process left (under the lock,
        no write is in progress)."""
        prefix = temporary_prefix(self.model)
        try:
            for path in self.directory.iterdir():
                if path.name.startswith(prefix) and path.name.endswith(TEMPORARY_SUFFIX):
                    path.unlink(missing_ok=True)
        except OSError:
            pass  # a leftover only takes space

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's exclusive save lock (released with the descriptor, or when
        the process dies)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError as exc:
            raise save_error(exc, self.directory) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
