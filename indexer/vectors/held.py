"""What an open index holds in memory: a snapshot, an exact tail, and their watermarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.vectors.types import BuildReport, refined

__all__ = ["Held", "codes_bytes", "empty_flat", "index_ids"]


def empty_flat(dim: int) -> Any:
    """An empty exact index of ``dim`` under int64 ids."""
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def index_ids(index: Any) -> np.ndarray:
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


def codes_bytes(held: Held) -> int:
    """Bytes of the re-scoring codes a refined snapshot holds (0 for the other kinds)."""
    import faiss

    if not held.refined:
        return 0
    refine: Any = faiss.downcast_index(held.base.index)
    codes: Any = faiss.downcast_index(refine.refine_index)
    return int(codes.ntotal) * int(codes.code_size)


def _flat_report() -> BuildReport:
    return BuildReport(type="flat", factory="IDMap2,Flat")


@dataclass
class Held:
    """One model's vectors in memory, and how they stand against the files on disk."""

    dim: int
    watermark: int = 0  # the highest row id held
    build: BuildReport = field(default_factory=_flat_report)
    requested: str = "auto"
    base: Any = None  # the snapshot (None until there is one)
    base_watermark: int = 0
    mmapped: bool = False
    stale_base: bool = False  # removals an approximate snapshot cannot apply in place
    # Row ids of a refined snapshot deleted since it was built (ascending): its codes cannot
    # drop them, so searches pass them over; ``deleted_saved`` of them are on disk.
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    deleted_saved: int = 0
    live_params: tuple[int, Any] | None = None  # (deleted count, search parameters) cached
    base_changed: bool = False  # removals applied in memory, not yet on disk
    tail: Any = None  # rows added since the snapshot, searched exactly
    tail_saved: int = 0  # leading tail rows already in the tail file
    disk_meta: dict[str, Any] | None = None  # the files' metadata as last read or written

    def __post_init__(self) -> None:
        if self.tail is None:
            self.tail = empty_flat(self.dim)

    @property
    def snapshot_size(self) -> int:
        """Vectors in the snapshot."""
        return 0 if self.base is None else int(self.base.ntotal)

    @property
    def tail_size(self) -> int:
        """Vectors in the tail (added since the snapshot)."""
        return int(self.tail.ntotal)

    @property
    def size(self) -> int:
        """Number of vectors held (the snapshot's deleted rows left out)."""
        return self.snapshot_size - int(self.deleted.size) + self.tail_size

    @property
    def exact(self) -> bool:
        """True when every score comes from exact search (no approximate snapshot)."""
        return self.build.type == "flat"

    @property
    def refined(self) -> bool:
        """True when the snapshot re-scores its candidates from codes it holds in memory."""
        return self.base is not None and refined(self.build.factory)

    def meta(self, model: str) -> dict[str, Any]:
        """The metadata of what is held: sizes and watermarks that belong together."""
        return {"model": model, "dim": self.dim, "format": 2,
                "type": self.build.type, "requested": self.requested,
                "size": self.snapshot_size, "watermark": self.base_watermark,
                "tail_size": self.tail_size, "tail_watermark": self.watermark,
                "build": self.build.to_json()} | (
                    {"deleted": int(self.deleted.size)} if self.deleted.size else {})
