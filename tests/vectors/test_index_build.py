"""Building the index from the store batch by batch: never the whole corpus in memory.

Real SQLite files and real FAISS indexes; the vectors are clustered, as in
``tests/vectors/test_index_types.py``. A store that records every read checks that no read
returns more rows than a batch, and tracemalloc (which sees NumPy's buffers and the
rows read, not FAISS's own memory, i.e. the index) checks that what the build holds
besides the index stays well under the corpus's size.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert

from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.schema import embeddings, videos
from indexer.vectors.index import StoreSource, VectorIndex, l2_normalise
from indexer.vectors.types import (
    RECALL_TARGET,
    ArraySource,
    build_index,
    exact_neighbours,
    recall_at,
)

DIM = 320  # above the PCA width, so the PCA candidate is tried
MODEL = "m"
BATCH = 2_000


class RecordingStore(Store):
    """A SQLite store that records how many vectors each read returns."""

    reads: list[int]

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ids, vectors in super().iter_vectors(model, after, batch):
            self.reads.append(len(vectors))
            yield ids, vectors

    def vectors_for_rows(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids, vectors = super().vectors_for_rows(row_ids)
        self.reads.append(len(vectors))
        return ids, vectors


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 400 centres plus noise (float32 (n, DIM))."""
    centres = np.random.default_rng(1000).normal(size=(400, DIM))
    rng = np.random.default_rng(seed)
    return l2_normalise(centres[rng.integers(0, len(centres), n)]
                        + 0.8 * rng.normal(size=(n, DIM)))


def _store(tmp_path: Path, n: int) -> RecordingStore:
    store = RecordingStore(make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    store.upgrade()
    now = datetime.now(UTC)
    for start in range(0, n, 10_000):
        count = min(10_000, n - start)
        names = [f"v{i:010d}" for i in range(start, start + count)]
        vectors = clustered(count, start)
        video_rows = [{"video_id": v, "source": "test", "title": v, "fetched_at": now,
                       "created_at": now} for v in names]
        vector_rows = [{"video_id": v, "model": MODEL, "dim": DIM, "created_at": now,
                        "vector": x.astype("<f4").tobytes()}
                       for v, x in zip(names, vectors, strict=True)]

        def write(conn: Any, video_rows: list[dict[str, Any]] = video_rows,
                  vector_rows: list[dict[str, Any]] = vector_rows) -> None:
            conn.execute(insert(videos), video_rows)
            conn.execute(insert(embeddings), vector_rows)

        store.transact("test", write)
    store.reads = []
    return store


def _corpus(store: Store) -> tuple[np.ndarray, np.ndarray]:
    parts = list(Store.iter_vectors(store, MODEL))
    return (np.concatenate([i for i, _ in parts]),
            l2_normalise(np.concatenate([v for _, v in parts])))


@pytest.mark.large
def test_a_large_ivf_rebuild_reads_batches_meets_its_recall_and_holds_every_row(
        tmp_path: Path) -> None:
    n = 50_000
    store = _store(tmp_path, n)
    corpus_bytes = n * DIM * 4
    index = VectorIndex(tmp_path / "index", MODEL, DIM, store)
    tracemalloc.start()
    try:
        report = index.rebuild(store, "ivf", batch=BATCH)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Every read at most a batch; what the build held beside the index is the training
    # sample and the tuning queries plus a few batches, under the corpus (a full matrix of
    # it, as a build from memory holds, would be the corpus at least).
    assert store.reads and max(store.reads) <= BATCH
    assert sum(store.reads) >= n  # the corpus was read, a batch at a time
    assert report.type == "ivf" and report.trained_size == n
    assert report.factory.startswith(("IDMap,PCA256,IVF", "PCA256,IVF"))
    assert 0 < report.sample_size < n / 2 and report.recall_at_10 >= RECALL_TARGET
    sample_bytes = (report.sample_size + report.tune_queries) * DIM * 4
    assert peak < sample_bytes + 8 * BATCH * DIM * 4, (peak, sample_bytes)
    assert peak < 0.8 * corpus_bytes, (peak, corpus_bytes)
    assert {"sample_s", "train_s", "read_s", "add_s", "exact_s", "tune_s"} <= set(report.phases)

    ids, vectors = _corpus(store)
    reopened = VectorIndex.open(tmp_path / "index", MODEL, DIM, store)
    assert reopened.build.recall_at_10 == report.recall_at_10
    assert (reopened.snapshot_size, reopened.tail_size) == (n, 0)
    assert np.array_equal(np.sort(reopened.ids()), np.sort(ids))
    assert reopened.watermark == int(ids.max())
    # The recall it reports holds against exact search over every stored vector.
    rng = np.random.default_rng(5)
    picks = rng.choice(n, 300, replace=False)
    queries = l2_normalise(vectors[picks] + 0.03 * rng.normal(size=(300, DIM)))
    _, found = reopened.search(queries, 10)
    truth = ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]]
    assert recall_at(found, truth) >= RECALL_TARGET


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_flat_and_hnsw_rebuilds_read_batches_and_hold_every_row(tmp_path: Path,
                                                                kind: str) -> None:
    n = 6_000
    store = _store(tmp_path, n)
    index = VectorIndex(tmp_path / "index", MODEL, DIM, store)
    report = index.rebuild(store, kind, batch=BATCH)
    assert store.reads and max(store.reads) <= BATCH
    assert report.type == kind and report.trained_size == n
    ids, vectors = _corpus(store)
    reopened = VectorIndex.open(tmp_path / "index", MODEL, DIM, store)
    assert np.array_equal(np.sort(reopened.ids()), np.sort(ids))
    if kind == "flat":  # exact: the very vectors stored
        np.testing.assert_allclose(reopened.vector(int(ids[1234])), vectors[1234], atol=1e-6)
    else:
        assert report.recall_at_10 >= RECALL_TARGET and report.sample_size <= n
    _, found = reopened.search(vectors[:100], 1)
    assert (found[:, 0] == ids[:100]).mean() >= 0.95  # each finds itself


def test_streamed_exact_neighbours_equal_one_pass_over_the_whole_matrix() -> None:
    rng = np.random.default_rng(3)
    vectors = l2_normalise(rng.normal(size=(5_003, 24)))
    ids = rng.permutation(10_000)[:5_003].astype(np.int64)
    queries = l2_normalise(rng.normal(size=(40, 24)))
    source = ArraySource(vectors, ids, batch=700)  # uneven batches, ids out of order
    scores, found = exact_neighbours(queries, source.batches(), 11)
    full = queries @ vectors.T
    order = np.argsort(-full, axis=1, kind="stable")[:, :11]
    np.testing.assert_array_equal(found, ids[order])
    np.testing.assert_allclose(scores, np.take_along_axis(full, order, 1), atol=1e-6)
    assert exact_neighbours(queries, iter(()), 5)[1].shape == (40, 0)


def test_the_in_memory_build_takes_ids_in_any_order(tmp_path: Path) -> None:
    vectors = clustered(4_000, 9)
    ids = np.arange(10, 4_010, dtype=np.int64)[::-1].copy()
    index, report = build_index(vectors, ids, "ivf")
    assert report.type == "ivf" and report.trained_size == 4_000
    assert report.recall_at_10 >= RECALL_TARGET
    _, found = index.search(vectors[:50], 1)
    assert (found[:, 0] == ids[:50]).mean() >= 0.9
    assert StoreSource(_store(tmp_path, 0), MODEL, DIM).count() == 0
    empty, empty_report = build_index(np.zeros((0, DIM), np.float32),
                                      np.zeros(0, np.int64), "ivf")
    assert empty.ntotal == 0 and empty_report.type == "flat"
