"""A small corpus with long titles, channels, publish times and re-uploaded thumbnails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from indexer.records import VideoMeta
from indexer.service import Service
from tests.fakes.corpus import video_id

__all__ = ["ORIGINALS", "REUPLOADS", "seed_titled_corpus"]

ORIGINALS = 4  # distinct thumbnails
REUPLOADS = 3  # copies of each (near-identical vectors) on other channels


def seed_titled_corpus(service: Service) -> list[str]:
    """Store ORIGINALS * (1 + REUPLOADS) videos; ids in storing order, originals first."""
    service.prepare_for_writing()
    rng = np.random.default_rng(7)
    base = rng.standard_normal((ORIGINALS, service.spec.dim)).astype(np.float32)
    metas, vectors = [], []
    start = datetime(2024, 2, 26, 6, 10, tzinfo=UTC)
    for copy in range(REUPLOADS + 1):
        for n in range(ORIGINALS):
            vid = video_id(copy * ORIGINALS + n)
            suffix = f" (reupload {copy})" if copy else ""
            metas.append(VideoMeta(
                video_id=vid, source="youtube",
                title=f"A very long title about thumbnail number {n} that goes on and on "
                      f"well past what one terminal line holds{suffix}",
                channel_id=f"UC{copy:022d}", channel_title=f"Channel with a long name {copy}",
                published_at=start + timedelta(days=copy, hours=n),
                thumbnail_url=f"https://i.ytimg.com/vi/{vid}/mqdefault.jpg"))
            noise = rng.standard_normal(service.spec.dim).astype(np.float32) * 0.05 * copy
            vectors.append(base[n] + noise)
    row_ids = service.store.add_embedded(metas, np.stack(vectors), service.spec.model_id)
    index = service.index()
    index.add(row_ids, np.stack(vectors))
    index.save()
    return [m.video_id for m in metas]
