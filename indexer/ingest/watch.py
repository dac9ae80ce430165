"""Checks newly stored vectors against the watchlist: a small in-memory index of the watched
vectors, so the cost grows with the new videos, not with the corpus."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

import numpy as np

from indexer.errors import ThumbsearchError
from indexer.store.metadata import Store
from indexer.store.watchlist import (
    SCORE_SLACK,
    NewMatch,
    WatchItem,
    record_matches,
    vector_under,
    watch_items_of,
    watch_state,
)

__all__ = ["WatchCheck"]


class WatchCheck:
    """Matches new vectors of ``model`` against the watched items and records each match once
    (with ``run_id``). The watched vectors are read again when the list changes, looked at
    after each batch is committed: an item added while a run goes on is either in that
    check, or its own corpus search (``watch add``) sees the batch."""

    def __init__(self, store: Store, model: str, run_id: int | None) -> None:
        self.store = store
        self.model = model
        self.run_id = run_id
        self.found = 0  # matches this check recorded first
        self._state: tuple[int, int] | None = None
        self._ids: list[int] = []
        self._own: list[str | None] = []  # each item's watched video
        self._matrix = np.zeros((0, 0), np.float32)
        self._thresholds = np.zeros(0, np.float32)

    @property
    def watched(self) -> int:
        """How many items the last check looked at (read now when nothing was checked: a
        run that stored nothing still says whether something is watched)."""
        if self._state is None:
            with suppress(ThumbsearchError):  # the run's own outcome is what counts
                self._load()
        return len(self._ids)

    def _load(self) -> None:
        state = watch_state(self.store)
        if state == self._state:
            return
        watched = self._vectors(watch_items_of(self.store))
        self._ids = [item.id for item, _ in watched]
        self._own = [item.video_id for item, _ in watched]
        self._matrix = (np.stack([vector for _, vector in watched]).astype(np.float32)
                        if watched else np.zeros((0, 0), np.float32))
        self._thresholds = np.array([item.threshold for item, _ in watched], np.float32)
        self._state = state

    def _vectors(self, items: list[WatchItem]) -> list[tuple[WatchItem, np.ndarray]]:
        """Each item with its vector under the run's model (``vector_under``); an item that
        has none is not checked (``watch list`` says so)."""
        out = []
        for item in items:
            vector = vector_under(self.store, item, self.model)
            if vector is not None:
                out.append((item, vector))
        return out

    def check(self, video_ids: Sequence[str], vectors: np.ndarray) -> int:
        """Record the watched items that ``vectors`` (stored, L2-normalised, one per video
        id) match; how many matches were new."""
        self._load()
        if not self._ids or not len(video_ids):
            return 0
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self._matrix.shape[1]:
            return 0  # vectors of another shape cannot match (a different model)
        scores = vectors @ self._matrix.T  # (new videos, watched items)
        rows, cols = np.nonzero(scores >= self._thresholds[None, :] - SCORE_SLACK)
        found = [NewMatch(self._ids[c], video_ids[r], float(scores[r, c]))
                 for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
                 if video_ids[r] != self._own[c]]
        added = record_matches(self.store, found, self.run_id)
        self.found += added
        return added
