"""Index types chosen by size, tuned on the corpus, memory-mapped, with a tail and compaction.

Real SQLite files and real FAISS indexes; vectors are clustered (like thumbnails of the
same scenes) so that approximate search has structure to exploit, as real corpora do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from indexer.errors import InputError
from indexer.records import VideoMeta
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.schema import embeddings
from indexer.vectors.index import TAIL_MIN, VectorIndex, l2_normalise
from indexer.vectors.types import FLAT_MAX, RECALL_TARGET, choose_type, recall_at
from search.cli import app

DIM = 320  # above the PCA width, so the PCA candidate is tried
MODEL = "m"
runner = CliRunner()


def clustered(n: int, seed: int, dim: int = DIM, scenes: int = 0) -> np.ndarray:
    """Unit vectors around 150 centres (the same ones for the same ``scenes``)."""
    centres = np.random.default_rng(1000 + scenes).normal(size=(150, dim))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(centres), n)
    return l2_normalise(centres[picks] + 0.8 * rng.normal(size=(n, dim)))


def _fill(store: Store, n: int, start: int = 0, seed: int = 0, scenes: int = 0) -> np.ndarray:
    metas = [VideoMeta(video_id=f"v{i:010d}", source="test", title=f"video {i}")
             for i in range(start, start + n)]
    return store.add_embedded(metas, clustered(n, seed, scenes=scenes), MODEL)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    s.upgrade()
    return s


def _all(store: Store) -> tuple[np.ndarray, np.ndarray]:
    parts = list(store.iter_vectors(MODEL))
    return (np.concatenate([i for i, _ in parts]),
            l2_normalise(np.concatenate([v for _, v in parts])))


def near(store: Store, n: int, seed: int) -> np.ndarray:
    """Queries not in the corpus but near it: stored vectors plus noise."""
    rng = np.random.default_rng(seed)
    _, vectors = _all(store)
    picked = vectors[rng.choice(len(vectors), n, replace=False)]
    return l2_normalise(picked + 0.03 * rng.normal(size=picked.shape))


def _exact(store: Store, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids, vectors = _all(store)
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def test_type_follows_corpus_size_and_unknown_types_are_refused() -> None:
    assert choose_type(FLAT_MAX - 1) == "flat" and choose_type(FLAT_MAX) == "ivf"
    assert choose_type(10, "hnsw") == "hnsw"
    with pytest.raises(InputError, match="unknown index type 'annoy'"):
        choose_type(10, "annoy")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_meets_its_recall_and_scores_exactly(store: Store, tmp_path: Path,
                                                               kind: str) -> None:
    _fill(store, 3000)
    index = VectorIndex(tmp_path / "index", MODEL, DIM, store)
    report = index.rebuild(store, kind)
    assert report.type == kind and report.recall_at_10 >= RECALL_TARGET
    assert report.factory.startswith(("IDMap,PCA256,IVF", "PCA256,IVF", "IDMap,PCA256,HNSW"))
    meta = json.loads(index.meta_path.read_text())
    assert meta["build"]["recall_at_10"] == report.recall_at_10 and meta["requested"] == kind

    reopened = VectorIndex.open(tmp_path / "index", MODEL, DIM, store)
    assert reopened.build.type == kind and reopened.info().mmap
    queries = near(store, 200, seed=7)
    scores, found = reopened.search(queries, 10)
    _, truth = _exact(store, queries, 10)
    assert recall_at(found, truth) >= RECALL_TARGET
    ids, vectors = _all(store)
    by_id = dict(zip(ids.tolist(), vectors, strict=True))
    for query, row_scores, row_ids in zip(queries, scores, found, strict=True):
        expected = np.array([by_id[int(i)] @ query for i in row_ids], np.float32)
        np.testing.assert_allclose(row_scores, expected, atol=1e-5)  # exact cosines
        assert (np.diff(row_scores) <= 1e-6).all()


def test_a_batch_rewrites_only_the_tail_until_compaction(store: Store, tmp_path: Path) -> None:
    _fill(store, 3000)
    directory = tmp_path / "index"
    VectorIndex(directory, MODEL, DIM, store).rebuild(store, "ivf")
    index = VectorIndex.open(directory, MODEL, DIM, store)
    snapshot = index.snapshot_path.read_bytes()

    rows = _fill(store, 500, start=3000, seed=1)
    index.add(rows, clustered(500, seed=1))
    index.save()
    assert index.snapshot_path.read_bytes() == snapshot  # the snapshot was not rewritten
    assert index.tail_size == 500
    assert index.tail_path.stat().st_size == 500 * index.tail_record.itemsize
    rows2 = _fill(store, 10, start=3500, seed=6)
    index.add(rows2, clustered(10, seed=6))
    index.save()  # appended: the file grows by exactly the batch
    assert index.tail_path.stat().st_size == 510 * index.tail_record.itemsize
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert (reopened.snapshot_size, reopened.tail_size) == (3000, 510)
    assert sorted(reopened.ids().tolist()) == sorted(_all(store)[0].tolist())

    more = _fill(store, TAIL_MIN, start=3510, seed=2)  # the tail outgrows its limit
    reopened.add(more, clustered(TAIL_MIN, seed=2))
    reopened.save()
    assert (reopened.snapshot_size, reopened.tail_size) == (5510, 0)
    assert not reopened.tail_path.exists()
    assert reopened.build.trained_size == 3000  # folded in, not trained again
    final = VectorIndex.open(directory, MODEL, DIM, store)
    assert final.size == 5510 and final.build.type == "ivf"
    queries = near(store, 100, seed=9)
    assert recall_at(final.search(queries, 10)[1], _exact(store, queries, 10)[1]) \
        >= RECALL_TARGET


@pytest.mark.large
def test_an_approximate_index_is_trained_again_once_the_corpus_doubles(
        store: Store, tmp_path: Path) -> None:
    _fill(store, 2000)
    directory = tmp_path / "index"
    VectorIndex(directory, MODEL, DIM, store).rebuild(store, "ivf")
    rows = _fill(store, 2100, start=2000, seed=3)
    index = VectorIndex.open(directory, MODEL, DIM, store)
    assert index.tail_size == 2100  # replayed from the database
    index.save()
    assert index.build.trained_size == 4100 and index.tail_size == 0
    assert index.build.recall_at_10 >= RECALL_TARGET
    assert int(rows.max()) == index.watermark


@pytest.mark.large
def test_rows_unlike_the_training_set_trigger_a_retrain(store: Store, tmp_path: Path) -> None:
    _fill(store, 3000)
    directory = tmp_path / "index"
    VectorIndex(directory, MODEL, DIM, store).rebuild(store, "ivf")
    _fill(store, TAIL_MIN + 1, start=3000, seed=5, scenes=1)  # other scenes entirely
    index = VectorIndex.open(directory, MODEL, DIM, store)
    index.save()
    assert index.build.trained_size == 3000 + TAIL_MIN + 1
    queries = near(store, 100, seed=11)
    assert recall_at(index.search(queries, 10)[1], _exact(store, queries, 10)[1]) \
        >= RECALL_TARGET


def test_a_lost_tail_is_replayed_from_the_database(store: Store, tmp_path: Path) -> None:
    _fill(store, 100)
    directory = tmp_path / "index"
    index = VectorIndex.open(directory, MODEL, DIM, store)
    index.save()
    rows = _fill(store, 50, start=100, seed=4)
    index.add(rows, clustered(50, seed=4))
    index.save()
    index.tail_path.unlink()
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert (reopened.snapshot_size, reopened.tail_size) == (100, 50)


def test_a_torn_tail_append_is_cut_and_nothing_is_lost(store: Store, tmp_path: Path) -> None:
    _fill(store, 100)
    directory = tmp_path / "index"
    index = VectorIndex.open(directory, MODEL, DIM, store)
    index.save()
    rows = _fill(store, 30, start=100, seed=4)
    index.add(rows, clustered(30, seed=4))
    index.save()
    with index.tail_path.open("ab") as handle:  # a crash in the middle of the next append
        handle.write(b"\x07" * (index.tail_record.itemsize + 17))
    more = _fill(store, 5, start=130, seed=8)  # committed, never saved to the index
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert (reopened.tail_size, reopened.watermark) == (35, int(more.max()))
    reopened.save()
    assert reopened.tail_path.stat().st_size == 35 * reopened.tail_record.itemsize
    again = VectorIndex.open(directory, MODEL, DIM, store)
    assert sorted(again.ids().tolist()) == sorted(_all(store)[0].tolist())


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_removal_reaches_a_memory_mapped_snapshot_and_survives_reopening(
        store: Store, tmp_path: Path, kind: str) -> None:
    _fill(store, 2500)
    directory = tmp_path / "index"
    VectorIndex(directory, MODEL, DIM, store).rebuild(store, kind)
    index = VectorIndex.open(directory, MODEL, DIM, store)
    assert index.info().mmap
    gone = index.ids()[:10]
    store.transact("test", lambda conn: conn.execute(
        delete(embeddings).where(embeddings.c.id.in_(gone.tolist()))))
    assert index.remove(gone) == 10
    index.save()
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert reopened.size == 2490
    assert not set(gone.tolist()) & set(reopened.ids().tolist())
    _, vectors = _all(store)
    _, found = reopened.search(vectors[:50], 10)
    assert not set(gone.tolist()) & set(found.ravel().tolist())


def test_rows_deleted_from_the_database_drop_out_of_approximate_answers(
        store: Store, tmp_path: Path) -> None:
    _fill(store, 2000)
    directory = tmp_path / "index"
    index = VectorIndex(directory, MODEL, DIM, store)
    index.rebuild(store, "ivf")
    _, vectors = _all(store)
    _, before = index.search(vectors[:1], 5)
    victim = int(before[0, 0])
    store.transact("test", lambda conn: conn.execute(
        delete(embeddings).where(embeddings.c.id == victim)))
    _, after = index.search(vectors[:1], 5)
    assert victim not in after[0].tolist() and (after[0] >= 0).all()


def _cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> Store:
    home = tmp_path / "home"
    monkeypatch.setenv("THUMBSEARCH_HOME", str(home))
    monkeypatch.setenv("THUMBSEARCH_MODEL", "efficientnet-lite0")
    store = Store(make_engine(f"sqlite:///{home / 'thumbsearch.sqlite3'}"))
    store.upgrade()
    metas = [VideoMeta(video_id=f"v{i:010d}", source="test", title=f"video {i}")
             for i in range(n)]
    store.add_embedded(metas, clustered(n, 0, dim=1280), "efficientnet-lite0")
    return store


def test_cli_builds_reports_and_keeps_the_type(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_home(tmp_path, monkeypatch, 2000)
    built = runner.invoke(app, ["index", "build", "--type", "ivf", "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.output)
    assert report["type"] == "ivf" and report["vectors"] == 2000
    assert report["recall_at_10"] >= RECALL_TARGET and "nprobe" in report["params"]
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).output)["index"]
    assert stats["type"] == "ivf" and stats["recall_at_10"] == report["recall_at_10"]
    assert 0 < stats["bytes_per_vector"] < 1280 * 4 and stats["mmap"]  # PCA matrix dominates here
    text = runner.invoke(app, ["stats"]).output
    assert "recall@10 vs exact" in text and "bytes a vector" not in text
    verbose = runner.invoke(app, ["stats", "-v"]).output
    assert "bytes a vector" in verbose and "IVF" in verbose
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0 and "type ivf" in rebuilt.output, rebuilt.output
    doctor = runner.invoke(app, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    bad = runner.invoke(app, ["index", "build", "--type", "annoy"])
    assert bad.exit_code == 2 and "unknown index type 'annoy'" in bad.output
    assert "Traceback" not in bad.output
