"""The ivf snapshot's re-scoring codes: recall against exact, bytes a vector, rows read back,
older snapshots, and codes kept by adds, replay and compaction.

Real SQLite files and real FAISS indexes over clustered 1280-d vectors of nearly tied cluster
mates (the benchmark's data, at 20,000 vectors).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from sqlalchemy import delete

from indexer.records import VideoMeta
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.schema import embeddings
from indexer.vectors.exact import l2_normalise
from indexer.vectors.index import TAIL_MIN, VectorIndex
from indexer.vectors.types import (
    BYTES_BUDGET,
    EXACT_DEPTH,
    RECALL_TARGET,
    BuildReport,
    recall_at,
)

DIM = 1280  # the default model's feature: 6-bit codes, 960 B a vector
MODEL = "m"
SIZE = 20_000
CLUSTER = 50  # as bench/index.py: n / 50 centres, noise of norm 0.8 against the centre's


def clustered(n: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(7).standard_normal((SIZE // CLUSTER, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, DIM)) * 0.8 / np.sqrt(DIM)
    return l2_normalise(centres[rng.integers(0, len(centres), n)] + noise)


def _add(store: Store, n: int, start: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    metas = [VideoMeta(video_id=f"v{i:010d}", source="test", title=f"video {i}")
             for i in range(start, start + n)]
    vectors = clustered(n, seed)
    return store.add_embedded(metas, vectors, MODEL), vectors


class CountingReads:
    """The store's reads, counting the rows ``vectors_for_rows`` is asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows_asked = 0

    def vectors_for_rows(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        self.rows_asked += len(row_ids)
        return self.store.vectors_for_rows(row_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A store of SIZE clustered vectors and its refined ivf index (built once, copied)."""
    root = tmp_path_factory.mktemp("refined")
    store = Store(make_engine(f"sqlite:///{root / 'db.sqlite3'}"))
    store.upgrade()
    ids, vectors = _add(store, SIZE, 0, 0)
    report = VectorIndex(root / "index", MODEL, DIM, store).rebuild(store, "ivf")
    assert "Refine(SQ6)" in report.factory, report
    store.engine.dispose()
    return root, ids, vectors


@pytest.fixture
def home(built: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path) -> Path:
    shutil.copytree(built[0], tmp_path / "home")
    return tmp_path / "home"


def _store(home: Path) -> Store:
    return Store(make_engine(f"sqlite:///{home / 'db.sqlite3'}"))


def _exact_ids(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return ids[order]


def test_refined_index_meets_recall_against_exact_with_exact_scores(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path) -> None:
    _, ids, vectors = built
    store = _store(home)
    index = VectorIndex.open(home / "index", MODEL, DIM, store)
    assert index._held.refined and index.info().mmap
    picks = np.random.default_rng(1).choice(SIZE, 300, replace=False)
    scores, found = index.search(vectors[picks], 10)
    truth = _exact_ids(vectors, ids, vectors[picks], 10)
    assert recall_at(found, truth) >= RECALL_TARGET
    # The final scores are exact cosines of the stored vectors, best first.
    position = {int(r): n for n, r in enumerate(ids)}
    expected = np.einsum("qd,qkd->qk", vectors[picks],
                         vectors[[[position[int(r)] for r in row] for row in found]])
    assert np.allclose(scores, expected, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-7).all()


def test_codes_and_coarse_codes_take_at_most_a_kibibyte_a_vector(home: Path) -> None:
    index = VectorIndex.open(home / "index", MODEL, DIM, _store(home))
    snapshot = index.snapshot_path.stat().st_size
    empty: Any = faiss.clone_index(faiss.read_index(str(index.snapshot_path)))
    empty.reset()  # the trained parts alone: PCA, centroids, codebooks, quantiser ranges
    fixed = len(faiss.serialize_index(empty))
    per_vector = (snapshot - fixed) / index.snapshot_size
    assert 960 <= per_vector <= BYTES_BUDGET
    info = index.info()
    assert info.codes_bytes >= 960 * index.snapshot_size


def test_a_lookup_reads_only_twice_its_k_rows_from_the_database(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path) -> None:
    vectors = built[2]
    store = _store(home)
    index = VectorIndex.open(home / "index", MODEL, DIM, store)
    counting = CountingReads(store)
    index.reads = counting  # type: ignore[assignment]
    _, found = index.search(vectors[5][None, :], 10)
    assert counting.rows_asked == EXACT_DEPTH * 10 and (found >= 0).all()
    # A row deleted in the database drops out, and the next of the ranking takes its place.
    victim = int(found[0, 3])
    with store.engine.begin() as connection:
        connection.execute(delete(embeddings).where(embeddings.c.id == victim))
    counting.rows_asked = 0
    _, again = index.search(vectors[5][None, :], 10)
    assert victim not in again[0].tolist() and (again >= 0).all()
    assert counting.rows_asked == EXACT_DEPTH * 10


def test_an_index_saved_before_the_codes_still_loads_and_answers(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path) -> None:
    _, ids, vectors = built
    store = _store(home)
    directory = home / "index"
    # What the previous release wrote: PCA and fast-scan codes under row ids, no codes of
    # the full vectors; its candidates were re-read from the database.
    factory = "PCA256,IVF282,PQ64x4fs"
    old: Any = faiss.index_factory(DIM, factory, faiss.METRIC_L2)
    old.train(vectors[:14_100])
    old.add_with_ids(vectors, ids)
    faiss.write_index(old, str(directory / f"{MODEL}.faiss"))
    build = BuildReport(type="ivf", factory=factory, params={"nprobe": 8, "candidates": 100},
                        recall_at_10=0.96, trained_size=SIZE)
    meta = {"model": MODEL, "dim": DIM, "format": 2, "type": "ivf", "requested": "auto",
            "size": SIZE, "watermark": int(ids[-1]), "tail_size": 0,
            "tail_watermark": int(ids[-1]), "build": build.to_json()}
    (directory / f"{MODEL}.json").write_text(json.dumps(meta))
    (directory / f"{MODEL}.tail").unlink(missing_ok=True)
    index = VectorIndex.open(directory, MODEL, DIM, store)
    assert index.snapshot_size == SIZE and not index._held.refined
    assert index.info().codes_bytes == 0
    picks = np.random.default_rng(2).choice(SIZE, 100, replace=False)
    _, found = index.search(vectors[picks], 10)
    assert recall_at(found, _exact_ids(vectors, ids, vectors[picks], 10)) >= 0.9


def test_adds_replay_and_compaction_keep_the_codes(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path) -> None:
    store = _store(home)
    index = VectorIndex.open(home / "index", MODEL, DIM, store)
    added, vectors = _add(store, 500, SIZE, 11)
    index.add_stored(added, vectors)
    # Rows another worker stored: the next open replays them from the database.
    replayed, more = _add(store, TAIL_MIN, SIZE + 500, 12)
    fresh = VectorIndex.open(home / "index", MODEL, DIM, store)
    assert fresh.tail_size == 500 + TAIL_MIN or fresh.tail_size == TAIL_MIN
    fresh.catch_up(store)
    fresh.save()  # the tail outgrew its share: folded into the snapshot, codes included
    assert fresh.tail_size == 0 and fresh._held.refined
    refine: Any = faiss.downcast_index(fresh._held.base.index)
    assert refine.refine_index.ntotal == refine.base_index.ntotal == fresh.snapshot_size
    assert fresh.snapshot_size == SIZE + 500 + TAIL_MIN
    reopened = VectorIndex.open(home / "index", MODEL, DIM, store)
    counting = CountingReads(store)
    reopened.reads = counting  # type: ignore[assignment]
    for row_id, vector in ((added[7], vectors[7]), (replayed[9], more[9])):
        scores, found = reopened.search(vector[None, :], 10)
        assert found[0, 0] == row_id and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert counting.rows_asked == 2 * EXACT_DEPTH * 10


def test_a_deletion_is_passed_over_at_search_time_without_a_build(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.vectors.index as index_module

    vectors = built[2]
    builds: list[str] = []
    real_build = index_module.build_from

    def counting_build(*args: Any, **kwargs: Any) -> Any:
        builds.append(str(args[1] if len(args) > 1 else kwargs.get("kind")))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(index_module, "build_from", counting_build)
    store = _store(home)
    index = VectorIndex.open(home / "index", MODEL, DIM, store)
    query = vectors[5][None, :]
    _, found = index.search(query, 10)
    victims = found[0, [0, 3, 6, 9]]  # the query's own row among them
    with store.engine.begin() as connection:
        connection.execute(delete(embeddings).where(embeddings.c.id.in_(victims.tolist())))
    assert index.remove(victims) == 4 and index.remove(victims[:1]) == 0
    index.save()
    assert builds == [] and index._held.refined
    assert index.size == SIZE - 4 and not np.isin(victims, index.ids()).any()
    assert (home / "index" / f"{MODEL}.deleted").exists() and index.info().deleted == 4
    # Without the database to drop them the codes alone answer: the scan never proposes them.
    for reads in (store, None):
        index.reads = reads  # type: ignore[assignment]
        _, again = index.search(query, 10)
        assert not np.isin(victims, again).any() and (again >= 0).all()
    # Another process opening the files passes them over too, and reads only 2k rows.
    reopened = VectorIndex.open(home / "index", MODEL, DIM, store)
    counting = CountingReads(store)
    reopened.reads = counting  # type: ignore[assignment]
    _, again = reopened.search(np.repeat(query, 3, axis=0), 10)
    assert not np.isin(victims, again).any() and (again >= 0).all()
    assert counting.rows_asked == EXACT_DEPTH * 10 and reopened.size == SIZE - 4
    # Rows added and folded in later keep the deleted ones out.
    added, more = _add(store, TAIL_MIN + 10, SIZE, 13)
    reopened.add_stored(added, more)
    reopened.save()
    assert reopened.tail_size == 0 and builds == []
    _, again = reopened.search(query, 10)
    assert not np.isin(victims, again).any()
    assert reopened.size == SIZE - 4 + TAIL_MIN + 10


def test_a_rebuild_forgets_the_deleted_list(
        built: tuple[Path, np.ndarray, np.ndarray], home: Path) -> None:
    store = _store(home)
    index = VectorIndex.open(home / "index", MODEL, DIM, store)
    victims = built[1][:3]
    with store.engine.begin() as connection:
        connection.execute(delete(embeddings).where(embeddings.c.id.in_(victims.tolist())))
    index.remove(victims)
    index.save()
    index.rebuild(store, "ivf")
    assert not (home / "index" / f"{MODEL}.deleted").exists()
    assert index.size == SIZE - 3 and index._held.deleted.size == 0
    assert not np.isin(victims, index.ids()).any()
