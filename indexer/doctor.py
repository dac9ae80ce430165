"""Consistency of the database and the index: what is wrong, and a rebuild from the database."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.errors import VectorIndexError
from indexer.progress import NullProgress, Progress
from indexer.service import Service
from indexer.store.writer import writer_lock
from indexer.vectors.index import VectorIndex, l2_normalise, read_tail
from indexer.vectors.types import BuildReport, choose_type

__all__ = ["DoctorReport", "check_corpus", "rebuild_index"]

_REBUILD = "run `thumbsearch index rebuild`"


@dataclass
class DoctorReport:
    """Figures of the database and the index snapshot, and every problem found."""

    model: str
    dim: int
    videos: int = 0
    vectors: int = 0
    snapshot_size: int = 0
    snapshot_watermark: int = 0
    index_size: int = 0
    codes_bytes: int = 0  # the snapshot's re-scoring codes in memory (0: none)
    deleted: int = 0  # snapshot rows deleted since it was built, passed over by searches
    last_row_id: int = 0
    sampled: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The figures and problems as JSON-ready values."""
        return {"model": self.model, "dim": self.dim, "videos": self.videos,
                "vectors": self.vectors, "snapshot_size": self.snapshot_size,
                "snapshot_watermark": self.snapshot_watermark, "index_size": self.index_size,
                "codes_bytes": self.codes_bytes, "deleted": self.deleted,
                "last_row_id": self.last_row_id, "sampled": self.sampled, "ok": self.ok,
                "problems": list(self.problems)}


def _check_snapshot(service: Service, report: DoctorReport) -> None:
    import faiss

    probe = VectorIndex(service.settings.index_dir, service.spec.model_id, service.spec.dim)
    if not probe.snapshot_path.exists() and not probe.next_path.exists():
        if report.vectors:
            report.problems.append(f"no index snapshot at {probe.snapshot_path}: it will be "
                                   f"rebuilt from the database on first use, or {_REBUILD}")
        return
    try:
        meta = json.loads(probe.meta_path.read_text())
    except (OSError, ValueError):
        report.problems.append(f"index metadata {probe.meta_path} is missing or unreadable: "
                               f"{_REBUILD}")
        return
    if meta.get("model") != report.model or meta.get("dim") != report.dim:
        report.problems.append(f"index snapshot was built by {meta.get('model')!r} "
                               f"({meta.get('dim')}-d), not {report.model!r} ({report.dim}-d): "
                               f"{_REBUILD}")
        return
    report.snapshot_watermark = int(meta.get("watermark", 0))
    # A swap a killed build committed but did not rename: the next save renames it.
    snapshot = probe.next_path if meta.get("next") and probe.next_path.exists() \
        else probe.snapshot_path
    try:
        loaded = faiss.read_index(str(snapshot))
    except RuntimeError:
        report.problems.append(f"index snapshot {snapshot} is truncated or corrupt: "
                               f"{_REBUILD}")
        return
    report.snapshot_size = int(loaded.ntotal)
    if loaded.ntotal != meta.get("size") or loaded.d != report.dim:
        report.problems.append(f"index snapshot holds {loaded.ntotal} vectors of "
                               f"{loaded.d}-d, its metadata says {meta.get('size')}: {_REBUILD}")
    tail_size = int(meta.get("tail_size", 0))
    if read_tail(probe.tail_path, report.dim, tail_size,
                 int(meta.get("tail_watermark", 0))) is None:
        report.problems.append(f"index tail {probe.tail_path} is missing, short or torn: its "
                               f"metadata says {tail_size} rows (the database is replayed on "
                               f"every open until it is repaired): {_REBUILD}")
    watermark = max(report.snapshot_watermark, int(meta.get("tail_watermark", 0)))
    # Compared with the highest id ever handed out, not the highest row left: a prune that
    # deleted the newest rows leaves the watermark past them, and ids are never reused.
    highest = service.store.highest_row_id()
    if watermark > highest:
        report.problems.append(f"index watermark {watermark} is past the "
                               f"database's last row {highest} (a database restored "
                               f"from an older backup?): {_REBUILD}")


def check_corpus(service: Service, sample: int = 100, seed: int = 0) -> DoctorReport:
    """Compare the database with the index: counts, ids, model, watermark, sampled vectors."""
    spec = service.spec
    report = DoctorReport(model=spec.model_id, dim=spec.dim)
    store = service.store
    if not store.exists():
        return report
    counts = store.counts(spec.model_id)
    report.videos, report.vectors = counts["videos"], counts["vectors"]
    report.last_row_id = store.max_row_id(spec.model_id)
    missing = store.videos_without_vector(spec.model_id)
    if missing:
        names = ", ".join(v for v, _ in missing[:5]) + (" ..." if len(missing) > 5 else "")
        report.problems.append(f"{len(missing)} videos have no {spec.model_id} vector ({names}): "
                               f"run `thumbsearch reembed --model {spec.model_id}`")
    _check_snapshot(service, report)
    try:
        index = service.index()  # the snapshot plus replay: what queries will see
    except VectorIndexError as exc:
        report.problems.append(f"{exc}")
        return report
    report.index_size = index.size
    info = index.info()
    report.codes_bytes, report.deleted = info.codes_bytes, info.deleted
    held = index.ids()
    unique, counts_per_id = np.unique(held, return_counts=True)
    if (counts_per_id > 1).any():
        report.problems.append(f"{int((counts_per_id > 1).sum())} row ids are in the index "
                               f"more than once: {_REBUILD}")
    stored_ids: list[int] = []
    stored: dict[int, np.ndarray] = {}
    for ids, vectors in store.iter_vectors(spec.model_id):
        stored_ids.extend(int(i) for i in ids)
        for i, v in zip(ids, vectors, strict=True):
            stored[int(i)] = v
    db_ids = np.asarray(stored_ids, dtype=np.int64)
    orphans = np.setdiff1d(unique, db_ids)
    absent = np.setdiff1d(db_ids, unique)
    if orphans.size:
        report.problems.append(f"{orphans.size} index ids have no row in the database "
                               f"(e.g. {int(orphans[0])}): {_REBUILD}")
    if absent.size:
        report.problems.append(f"{absent.size} database vectors are not in the index "
                               f"(e.g. row {int(absent[0])}): {_REBUILD}")
    common = np.intersect1d(unique, db_ids)
    rng = np.random.default_rng(seed)
    picked = rng.choice(common, size=min(sample, common.size), replace=False) \
        if common.size else common
    bad = 0
    tail_ids = set(held[held.size - index.tail_size:].tolist())
    for row in picked:
        expected = l2_normalise(stored[int(row)])[0]
        if index.exact or int(row) in tail_ids:
            bad += not np.allclose(index.vector(int(row)), expected, atol=1e-5)
        else:  # an approximate snapshot holds codes: the row must come back when searched
            bad += not index.contains(int(row), expected)
    report.sampled = int(picked.size)
    if bad:
        report.problems.append(f"{bad} of {picked.size} sampled vectors differ between the "
                               f"index and the database: {_REBUILD}")
    return report


def rebuild_index(service: Service, wait: float = 0.0, kind: str | None = None, *,
                  progress: Progress | None = None) -> BuildReport:
    """Build the snapshot again from the database (under the writer lock) and swap it in.

    ``kind`` is an index type of ``indexer.vectors.types.INDEX_TYPES`` (auto: by corpus
    size), refused when the corpus is too small for it; None keeps the type the snapshot
    was asked for (exact while the corpus is too small for it). The current files stay
    as they are until the new snapshot is complete and verified (``VectorIndex.rebuild``),
    so a failure leaves the working index. Returns how it was built. ``progress`` hears
    the build as one step, once the writer lock is held.
    """
    strict = kind is not None
    if kind is not None:
        choose_type(0, kind)  # an unknown type fails before anything is read
    spec = service.spec
    with writer_lock(service.settings.home, "index rebuild", wait=wait,
                     engine=service.store.engine):
        probe = VectorIndex(service.settings.index_dir, spec.model_id, spec.dim)
        if kind is None:  # a repair keeps the type a user asked for, when that can be read
            try:
                kind = str((probe.read_meta() or {}).get("requested", "auto"))
            except VectorIndexError:
                kind = "auto"
        if not service.store.exists():
            return BuildReport(type="flat", factory="IDMap2,Flat")
        progress = progress or NullProgress()
        started = time.perf_counter()
        progress.begin(f"building the {spec.model_id} index")
        index = VectorIndex(service.settings.index_dir, spec.model_id, spec.dim, service.store)
        report = index.rebuild(service.store, kind, strict=strict)
        service._index = index
        progress.done(f"index of {report.trained_size} vectors built in "
                      f"{time.perf_counter() - started:.1f} s")
        return report
