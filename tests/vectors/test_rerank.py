"""The one re-rank: each query's candidates ordered by exact cosine, deleted rows dropped."""

from __future__ import annotations

import numpy as np

from indexer.vectors.exact import l2_normalise, rerank


def test_candidates_are_ordered_by_exact_cosine_and_missing_rows_drop_out() -> None:
    rng = np.random.default_rng(3)
    vectors = l2_normalise(rng.standard_normal((6, 8)))
    rows = np.arange(10, 16, dtype=np.int64)
    queries = vectors[[0, 3]]
    candidates = np.array([[15, 10, 99, 12, -1], [13, 13, 11, -1, -1]], np.int64)
    scores, ids = rerank(queries, candidates, rows, vectors, 4)
    first = sorted([15, 10, 12], key=lambda r: -float(vectors[r - 10] @ queries[0]))
    assert ids[0].tolist() == [*first, -1]  # 99 is not stored: it drops out
    assert ids[1].tolist() == [13, 11, -1, -1]  # a candidate proposed twice counts once
    np.testing.assert_allclose(scores[1, :2], [1.0, vectors[1] @ queries[1]], rtol=1e-6)
    assert np.isneginf(scores[1, 2:]).all()


def test_nothing_stored_leaves_every_slot_empty() -> None:
    scores, ids = rerank(np.ones((2, 4), np.float32) / 2, np.array([[1, 2], [3, -1]]),
                         np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 3)
    assert (ids == -1).all() and np.isneginf(scores).all()
