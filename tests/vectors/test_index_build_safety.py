"""`index build` and `index rebuild` never destroy the working index.

A new snapshot is written beside the old one, verified (it opens, holds the ids the
database holds, finds its own vectors) and only then swapped in; any failure before the
swap leaves the snapshot, tail and metadata byte-identical and no temporary file behind.
Types that cannot be trained on a small corpus are built with parameters that fit it, or
refused with one line. Real SQLite files, real FAISS indexes, no model (stored vectors).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from indexer.errors import VectorIndexError
from indexer.records import VideoMeta
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.schema import embeddings
from indexer.vectors import types as index_types
from indexer.vectors.index import VectorIndex, l2_normalise
from search.cli import app
from tests.fakes.build_child import STEPS

ROOT = Path(__file__).resolve().parents[2]
MODEL = "efficientnet-lite0"
DIM = 1280  # the default model's feature
runner = CliRunner()


def clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 20 centres plus noise (float32 (n, dim))."""
    centres = np.random.default_rng(1000).normal(size=(20, dim))
    rng = np.random.default_rng(seed)
    return l2_normalise(centres[rng.integers(0, len(centres), n)]
                        + 0.8 * rng.normal(size=(n, dim)))


def _metas(start: int, n: int) -> list[VideoMeta]:
    return [VideoMeta(video_id=f"v{i:010d}", source="test", title=f"video {i}")
            for i in range(start, start + n)]


def _home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> Store:
    """A home holding ``n`` stored vectors, an exact index of them and a tail of 3 more."""
    monkeypatch.setenv("THUMBSEARCH_MODEL", MODEL)
    store = Store(make_engine(f"sqlite:///{isolated_env / 'thumbsearch.sqlite3'}"))
    store.upgrade()
    store.add_embedded(_metas(0, n), clustered(n, 0), MODEL)
    built = runner.invoke(app, ["index", "build"])
    assert built.exit_code == 0, built.output
    store.add_embedded(_metas(n, 3), clustered(3, 1), MODEL)
    index = VectorIndex.open(isolated_env / "index", MODEL, DIM, store)
    index.save()  # three rows in the tail file
    assert index.tail_size == 3 and index.tail_path.exists()
    return store


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _similar_works(video: str = "v0000000001") -> None:
    found = runner.invoke(app, ["similar", video, "-k", "3", "--json"])
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.output)["results"]) == 3


# Which explicit type a corpus of each size gets: fitted, or refused before anything.
OUTCOMES = {(30, "ivf"): "refused", (30, "hnsw"): "built",
            (160, "ivf"): "built", (160, "hnsw"): "built"}


@pytest.mark.parametrize(("n", "kind"), sorted(OUTCOMES))
def test_an_explicit_type_on_a_small_corpus_is_fitted_or_refused_and_never_destroys(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch, n: int, kind: str) -> None:
    store = _home(isolated_env, monkeypatch, n)
    directory = isolated_env / "index"
    before = _files(directory)
    result = runner.invoke(app, ["index", "build", "--type", kind, "--json"])
    assert "Traceback" not in result.output
    if OUTCOMES[(n, kind)] == "refused":
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.output
        need = index_types.minimum_size(kind)
        assert lines[0].startswith("error: ") and f"at least {need} vectors" in lines[0]
        assert f"holds {n + 3}" in lines[0] and "untouched" in lines[0], lines[0]
        assert _files(directory) == before  # snapshot, tail and metadata byte-identical
    else:
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["type"] == kind and report["vectors"] == n + 3
        assert sorted(p.name for p in directory.iterdir()) == [f"{MODEL}.faiss",
                                                                f"{MODEL}.json"]
        index = VectorIndex.open(directory, MODEL, DIM, store)
        assert index.build.type == kind and (index.snapshot_size, index.tail_size) == (n + 3, 0)
        parts = list(store.iter_vectors(MODEL))
        ids = np.concatenate([i for i, _ in parts])
        vectors = np.concatenate([v for _, v in parts])
        _, found = index.search(vectors, 1)
        assert (found[:, 0] == ids).all()  # every stored vector finds itself
    _similar_works()
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0


def test_fitted_parameters_follow_the_training_sample() -> None:
    # 30 and 160 vectors: PCA no wider than the sample, no 4-bit codes (16 centroids a
    # code need 624 training points), lists of at least 39 points each.
    candidates_for, fitting_type = index_types.candidates_for, index_types.fitting_type
    minimum_size = index_types.minimum_size
    assert candidates_for("hnsw", 30, DIM) == ["IDMap,PCA24,HNSW32,SQ8", "IDMap,HNSW32,SQ8"]
    assert candidates_for("ivf", 160, DIM) == ["PCA152,IVF4,SQ8", "IVF4,SQ8"]
    assert candidates_for("ivf", 2_000, DIM)[0] == "IDMap,PCA256,IVF51,PQ64x4fs,Refine(SQ6)"
    assert candidates_for("ivf", 100_000, DIM)[:2] == [
        "IDMap,PCA256,IVF632,PQ64x4fs,Refine(SQ6)", "PCA256,IVF632,PQ64x4fs"]
    assert (minimum_size("ivf"), minimum_size("hnsw"), minimum_size("flat")) == (78, 11, 0)
    # Maintenance (compaction, `index rebuild`) keeps exact search below the minimum.
    assert fitting_type(77, "ivf") == "flat" and fitting_type(78, "ivf") == "ivf"
    assert fitting_type(10, "hnsw") == "flat" and fitting_type(10, "auto") == "flat"


class FailingStore(Store):
    """A store whose vector reads fail after ``good`` batches (a build dies mid-way)."""

    good = 1

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for number, part in enumerate(super().iter_vectors(model, after, batch)):
            if number >= self.good and after == 0:
                raise ValueError("could not broadcast input array from shape (50,) into (49,)")
            yield part


class ShrinkingStore(Store):
    """A store that loses a row once a build has read every batch (a concurrent prune):
    the new snapshot no longer matches the database, so verification must refuse it."""

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from super().iter_vectors(model, after, batch)
        if after == 0:
            self.transact("test", lambda conn: conn.execute(
                delete(embeddings).where(embeddings.c.id == 5)))


def _library_home(tmp_path: Path, store_class: type[Store], n: int = 300) -> tuple[Store, Path]:
    store = store_class(make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    store.upgrade()
    store.add_embedded(_metas(0, n), clustered(n, 0), MODEL)
    directory = tmp_path / "index"
    VectorIndex.open(directory, MODEL, DIM, Store(store.engine)).compact()
    store.add_embedded(_metas(n, 3), clustered(3, 1), MODEL)
    index = VectorIndex.open(directory, MODEL, DIM, Store(store.engine))
    index.save()
    assert index.tail_size == 3
    return store, directory


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_build_that_fails_mid_way_leaves_the_old_files_byte_identical(
        tmp_path: Path, kind: str) -> None:
    store, directory = _library_home(tmp_path, FailingStore)
    before = _files(directory)
    index = VectorIndex.open(directory, MODEL, DIM, store)
    with pytest.raises(VectorIndexError, match="could not broadcast") as raised:
        index.rebuild(store, kind, batch=50)
    message = str(raised.value)
    assert "\n" not in message and "untouched" in message
    assert isinstance(raised.value.__cause__, ValueError)  # translated at the boundary
    assert _files(directory) == before  # and no temporary file behind
    # The process that failed still answers from the old index, and so does a new one.
    assert index.size == 303 and index.build.type == "flat"
    reopened = VectorIndex.open(directory, MODEL, DIM, Store(store.engine))
    assert reopened.size == 303 and reopened.tail_size == 3


def test_a_snapshot_that_does_not_match_the_database_is_never_swapped_in(
        tmp_path: Path) -> None:
    store, directory = _library_home(tmp_path, ShrinkingStore)
    before = _files(directory)
    index = VectorIndex.open(directory, MODEL, DIM, Store(store.engine))
    with pytest.raises(VectorIndexError, match="changed during the build"):
        index.rebuild(store, "hnsw", batch=50)
    assert _files(directory) == before


class DiesBeforeCommit(VectorIndex):
    """A build killed once its new snapshot is written beside the old one, before the
    metadata that would make it current."""

    def _commit(self, meta: dict[str, Any]) -> None:
        raise KeyboardInterrupt


class DiesAfterCommit(VectorIndex):
    """A build killed right after the metadata naming the new snapshot was written, before
    the new snapshot took the old one's name."""

    def _promote(self) -> None:
        raise KeyboardInterrupt


def test_a_build_killed_before_its_commit_leaves_the_old_index_in_use(tmp_path: Path) -> None:
    store, directory = _library_home(tmp_path, Store)
    before = _files(directory)
    with pytest.raises(KeyboardInterrupt):
        DiesBeforeCommit.open(directory, MODEL, DIM, store).rebuild(store, "hnsw")
    # A SIGKILL would leave the written snapshot beside the old files: readers ignore it.
    left = _files(directory)
    assert {name: left[name] for name in before} == before
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert reopened.build.type == "flat" and (reopened.snapshot_size,
                                              reopened.tail_size) == (300, 3)
    reopened.save()  # the next writer clears what the dead one left
    assert sorted(_files(directory)) == sorted(before)


def test_a_build_killed_after_its_commit_opens_as_the_new_index(tmp_path: Path) -> None:
    store, directory = _library_home(tmp_path, Store)
    with pytest.raises(KeyboardInterrupt):
        DiesAfterCommit.open(directory, MODEL, DIM, store).rebuild(store, "hnsw")
    reopened = VectorIndex.open(directory, MODEL, DIM, store)
    assert reopened.build.type == "hnsw" and (reopened.snapshot_size,
                                              reopened.tail_size) == (303, 0)
    _, vectors = next(store.iter_vectors(MODEL))
    _, found = reopened.search(vectors[:5], 1)
    assert found[:, 0].tolist() == [1, 2, 3, 4, 5]
    reopened.save()  # the next writer finishes the swap
    assert sorted(p.name for p in directory.iterdir()) == [f"{MODEL}.faiss", f"{MODEL}.json"]
    again = VectorIndex.open(directory, MODEL, DIM, store)
    assert again.build.type == "hnsw" and again.size == 303


@pytest.mark.kill
@pytest.mark.parametrize("step", STEPS)
def test_a_build_killed_at_any_step_leaves_a_working_index(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, step: str) -> None:
    store = _home(isolated_env, monkeypatch, 160)
    directory = isolated_env / "index"
    before = _files(directory)
    marker, log = tmp_path / "stopped", tmp_path / "child.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.build_child",
             "flat" if step == "reading" else "hnsw", step, str(marker)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):  # a guard against a child that never gets there, not a timing
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), log.read_text()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    index = VectorIndex.open(directory, MODEL, DIM, store)
    if step in ("reading", "written"):  # before the commit: the old index, as it was
        left = _files(directory)
        assert {name: left[name] for name in before} == before
        assert index.build.type == "flat" and (index.snapshot_size, index.tail_size) == (160, 3)
    else:  # committed: the new index, whatever was left to rename
        assert index.build.type == "hnsw" and (index.snapshot_size, index.tail_size) == (163, 0)
    _similar_works()
    index.save()  # the next writer clears what the killed one left, or finishes its swap
    assert sorted(_files(directory)) == sorted(before if step in ("reading", "written")
                                               else [f"{MODEL}.faiss", f"{MODEL}.json"])
    parts = list(store.iter_vectors(MODEL))
    ids, vectors = np.concatenate([i for i, _ in parts]), np.concatenate([v for _, v in parts])
    _, found = VectorIndex.open(directory, MODEL, DIM, store).search(vectors, 1)
    assert (found[:, 0] == ids).all()


def test_a_rebuild_keeps_exact_search_while_the_corpus_is_below_the_kept_type(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _home(isolated_env, monkeypatch, 100)
    assert runner.invoke(app, ["index", "build", "--type", "ivf"]).exit_code == 0
    store.transact("test", lambda conn: conn.execute(
        delete(embeddings).where(embeddings.c.id > 50)))  # pruned below the 78 ivf needs
    rebuilt = runner.invoke(app, ["index", "rebuild", "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.output)["type"] == "flat"
    meta = json.loads((isolated_env / "index" / f"{MODEL}.json").read_text())
    assert meta["type"] == "flat" and meta["requested"] == "ivf"  # ivf again once it grows
    _similar_works()
