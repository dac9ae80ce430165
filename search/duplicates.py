"""Near-duplicate groups: connected components of the similarity graph above a threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from indexer.errors import InputError
from search.strength import LIKELY_REUPLOAD

if TYPE_CHECKING:
    import numpy as np

    from indexer.service import Service

__all__ = [
    "DEFAULT_THRESHOLD",
    "EXACT_LIMIT",
    "DuplicateGroup",
    "DuplicateVideo",
    "duplicate_components",
    "find_duplicates",
]

DEFAULT_THRESHOLD = LIKELY_REUPLOAD
EXACT_LIMIT = 20_000
_BATCH = 2048


class _UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        import numpy as np

        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def _search_index(vectors: np.ndarray, exact: bool) -> Any:
    import faiss
    import numpy as np

    n, dim = vectors.shape
    index: Any
    if exact:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = max(1, int(4 * math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = min(nlist, 8)
    index.add(vectors)
    return index


def duplicate_components(vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *,
                         exact: bool | None = None,
                         batch: int = _BATCH) -> list[tuple[list[int], np.ndarray]]:
    """Groups of positions (2+ members) linked by cosine >= threshold, largest first.

    ``vectors`` is float32 (n, dim); each group comes with each member's best score to
    another member, float32 (len(group),). ``exact`` defaults to n <= EXACT_LIMIT.

    The graph is never built as a dense n x n matrix: vectors are searched against a FAISS
    inner-product index in batches with ``range_search`` (every pair scoring at least the
    threshold) and the edges go straight into a union-find. Up to ``EXACT_LIMIT`` vectors the
    index is flat (exact); past it an IVF index probes the ``nprobe`` nearest of
    ``4 * sqrt(n)`` cells, so a pair is missed only when its two thumbnails fall in cells far
    apart, which near-identical vectors hardly ever do.
    """
    import numpy as np

    from indexer.vectors.index import l2_normalise

    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"the threshold is a cosine similarity in [-1, 1], got {threshold}")
    vectors = np.ascontiguousarray(l2_normalise(np.asarray(vectors, dtype=np.float32)))
    n = len(vectors)
    if n < 2:
        return []
    index = _search_index(vectors, n <= EXACT_LIMIT if exact is None else exact)
    sets = _UnionFind(n)
    best = np.full(n, -np.inf, dtype=np.float32)
    # A tiny margin so a pair exactly at the threshold survives float rounding.
    radius = float(threshold) - 1e-6
    for start in range(0, n, batch):
        chunk = vectors[start:start + batch]
        lims, scores, hits = index.range_search(chunk, radius)
        owners = np.repeat(np.arange(start, start + len(chunk)), np.diff(lims).astype(np.int64))
        keep = hits != owners
        owners, hits, scores = owners[keep], hits[keep], scores[keep]
        np.maximum.at(best, owners, scores)
        for a, b in zip(owners.tolist(), hits.tolist(), strict=True):
            sets.union(a, b)
    roots = np.fromiter((sets.find(i) for i in range(n)), dtype=np.int64, count=n)
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(sets.size[roots] > 1).tolist():
        members.setdefault(int(roots[i]), []).append(i)
    groups = sorted(members.values(), key=lambda g: (-len(g), g[0]))
    return [(g, best[g]) for g in groups]


@dataclass(frozen=True)
class DuplicateVideo:
    """One member of a group."""

    video_id: str
    title: str
    channel_id: str
    channel_title: str
    published_at: datetime | None
    best_score: float  # highest cosine to another member of the group
    thumbnail_url: str
    thumbnail_sha256: str | None


@dataclass(frozen=True)
class DuplicateGroup:
    """Videos whose thumbnails are near-identical, earliest publish first."""

    videos: list[DuplicateVideo]

    @property
    def channels(self) -> list[str]:
        """Distinct channel titles (or ids), in the order their first video appears."""
        return list(dict.fromkeys(v.channel_title or v.channel_id for v in self.videos
                                  if v.channel_title or v.channel_id))

    @property
    def first_published(self) -> datetime | None:
        """The earliest publish time in the group (the likely original's)."""
        times = [v.published_at for v in self.videos if v.published_at is not None]
        return min(times) if times else None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of one group."""
        first = self.first_published
        return {"size": len(self.videos), "channels": self.channels,
                "first_published": first.isoformat() if first else None,
                "videos": [{"video_id": v.video_id, "title": v.title,
                            "channel_id": v.channel_id, "channel_title": v.channel_title,
                            "published_at": v.published_at.isoformat() if v.published_at
                            else None, "best_score": round(v.best_score, 6),
                            "thumbnail_url": v.thumbnail_url} for v in self.videos]}


def _publish_order(video: DuplicateVideo) -> tuple[int, datetime | str, str]:
    if video.published_at is None:
        return (1, "", video.video_id)
    return (0, video.published_at, video.video_id)


def find_duplicates(service: Service, threshold: float = DEFAULT_THRESHOLD, *,
                    across_channels: bool = False) -> list[DuplicateGroup]:
    """Groups of near-identical thumbnails in the corpus, largest first."""
    import numpy as np

    service.require_corpus()
    row_parts: list[np.ndarray] = []
    vector_parts: list[np.ndarray] = []
    for ids, vectors in service.store.iter_vectors(service.spec.model_id):
        row_parts.append(ids)
        vector_parts.append(vectors)
    if not row_parts:
        return []
    rows = np.concatenate(row_parts)
    components = duplicate_components(np.concatenate(vector_parts), threshold)
    wanted = [int(rows[i]) for group, _ in components for i in group]
    video_of_row = service.store.video_ids_for_rows(wanted)
    stored = service.store.get_videos(list(video_of_row.values()))
    out: list[DuplicateGroup] = []
    for group, best in components:
        members: list[DuplicateVideo] = []
        for position, score in zip(group, best.tolist(), strict=True):
            video = stored.get(video_of_row.get(int(rows[position]), ""))
            if video is None:
                continue  # deleted while we read
            members.append(DuplicateVideo(
                video_id=video.video_id, title=video.title, channel_id=video.channel_id,
                channel_title=video.channel_title, published_at=video.published_at,
                best_score=float(score), thumbnail_url=video.thumbnail_url,
                thumbnail_sha256=video.thumbnail_sha256))
        if len(members) < 2:
            continue
        found = DuplicateGroup(sorted(members, key=_publish_order))
        if across_channels and len({v.channel_id or v.channel_title
                                    for v in found.videos} - {""}) < 2:
            continue
        out.append(found)
    out.sort(key=lambda g: (-len(g.videos), g.videos[0].video_id))
    return out
