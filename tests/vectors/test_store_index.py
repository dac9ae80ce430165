"""The store and the FAISS index, from stored vectors, with no model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect

from indexer.errors import ModelMismatchError
from indexer.records import VideoMeta
from indexer.store.db import make_engine, upgrade_database
from indexer.store.metadata import Store
from indexer.vectors.index import VectorIndex, l2_normalise

DIM = 16


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    s.upgrade()
    return s


def _metas(n: int, start: int = 0) -> list[VideoMeta]:
    return [VideoMeta(video_id=f"vid{i:08d}", source="youtube", title=f"title {i}",
                      channel_title="ch") for i in range(start, start + n)]


def _vectors(n: int, seed: int) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, DIM)))


def test_alembic_upgrade_head_on_a_fresh_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'fresh.sqlite3'}")
    upgrade_database(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"videos", "queries", "query_videos", "embeddings", "ingest_runs",
            "alembic_version"} <= tables
    upgrade_database(engine)  # idempotent at head


def test_alembic_downgrade_to_base_and_back(tmp_path: Path) -> None:
    from alembic import command

    from indexer.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert "videos" not in inspect(make_engine(url)).get_table_names()
    command.upgrade(config, "head")
    assert "videos" in inspect(make_engine(url)).get_table_names()


def test_store_round_trips_vectors_and_ids(store: Store) -> None:
    vectors = _vectors(5, 0)
    ids = store.add_embedded(_metas(5), vectors, "m")
    assert list(ids) == [1, 2, 3, 4, 5]
    found = store.get_vector("vid00000003", "m")
    assert found is not None
    assert found[0] == 4
    np.testing.assert_array_equal(found[1], vectors[3])
    assert store.embedded_ids(["vid00000001", "nope"], "m") == {"vid00000001"}
    assert store.embedded_ids(["vid00000001"], "other-model") == set()
    assert store.counts("m") == {"videos": 5, "vectors": 5, "queries": 0}


def test_a_vector_is_never_stored_twice(store: Store) -> None:
    first = store.add_embedded(_metas(3), _vectors(3, 0), "m")
    again = store.add_embedded(_metas(3), _vectors(3, 1), "m")
    assert list(first) == list(again)
    assert store.counts("m")["vectors"] == 3


def test_query_links_keep_first_rank(store: Store) -> None:
    store.add_embedded(_metas(3), _vectors(3, 0), "m")
    qid = store.query_id("cats")
    assert store.query_id("cats") == qid
    store.link_query(qid, [("vid00000000", 0), ("vid00000001", 1), ("not-stored", 2)])
    store.link_query(qid, [("vid00000001", 7)])
    from sqlalchemy import select

    from indexer.store.schema import query_videos
    with store.engine.connect() as conn:
        rows = sorted(conn.execute(select(query_videos.c.video_id, query_videos.c.rank)))
    assert rows == [("vid00000000", 0), ("vid00000001", 1)]


def test_index_finds_each_vector_as_its_own_nearest(store: Store, tmp_path: Path) -> None:
    vectors = _vectors(50, 3)
    ids = store.add_embedded(_metas(50), vectors, "m")
    index = VectorIndex.open(tmp_path / "index", "m", DIM, store)
    assert index.size == 50
    scores, found = index.search(vectors, 1)
    assert list(found[:, 0]) == list(ids)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_snapshot_plus_replay_after_a_crash(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "index"
    index = VectorIndex.open(directory, "m", DIM, store)
    ids = store.add_embedded(_metas(10), _vectors(10, 0), "m")
    index.add(ids, _vectors(10, 0))
    index.save()
    # Rows committed after the snapshot, then a crash before the next save.
    later = store.add_embedded(_metas(5, start=10), _vectors(5, 1), "m")
    reopened = VectorIndex.open(directory, "m", DIM, store)
    assert reopened.size == 15
    assert reopened.watermark == int(later.max())
    _, found = reopened.search(_vectors(5, 1), 1)
    assert list(found[:, 0]) == list(later)


def test_adding_rows_already_in_the_index_is_a_no_op(store: Store, tmp_path: Path) -> None:
    ids = store.add_embedded(_metas(4), _vectors(4, 0), "m")
    index = VectorIndex.open(tmp_path / "index", "m", DIM, store)
    index.add(ids, _vectors(4, 0))
    assert index.size == 4


@pytest.mark.parametrize("damage", ["truncate", "delete", "garbage"])
def test_damaged_snapshot_is_rebuilt_from_the_store(store: Store, tmp_path: Path,
                                                    damage: str) -> None:
    directory = tmp_path / "index"
    store.add_embedded(_metas(20), _vectors(20, 0), "m")
    index = VectorIndex.open(directory, "m", DIM, store)
    index.save()
    path = index.snapshot_path
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"not a faiss index")
    assert VectorIndex.open(directory, "m", DIM, store).size == 20


def test_index_refuses_another_model_or_dimension(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "index"
    store.add_embedded(_metas(3), _vectors(3, 0), "m")
    VectorIndex.open(directory, "m", DIM, store).save()
    with pytest.raises(ModelMismatchError, match="16-d"):
        VectorIndex.open(directory, "m", DIM * 2, store)
    meta = directory / "m.json"
    meta.write_text(meta.read_text().replace('"m"', '"other"'))
    with pytest.raises(ModelMismatchError, match="other"):
        VectorIndex.open(directory, "m", DIM, store)


def test_snapshot_save_is_atomic_and_leaves_no_temporary_files(store: Store,
                                                               tmp_path: Path) -> None:
    directory = tmp_path / "index"
    store.add_embedded(_metas(3), _vectors(3, 0), "m")
    index = VectorIndex.open(directory, "m", DIM, store)
    index.save()
    index.save()
    assert sorted(p.name for p in directory.iterdir()) == ["m.faiss", "m.json"]


def schema_differences(url: str) -> list[object]:
    """Upgrade the database at ``url`` to head; what differs from the table definitions."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from indexer.store.schema import metadata

    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with engine.connect() as conn:
            diff: list[object] = compare_metadata(MigrationContext.configure(conn), metadata)
        return diff
    finally:
        engine.dispose()


def test_migrations_match_the_table_definitions(tmp_path: Path) -> None:
    assert schema_differences(f"sqlite:///{tmp_path / 'cmp.sqlite3'}") == []


def test_batches_larger_than_sqlites_variable_limit(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy import event

    from indexer.ingest.enrich import delete_videos

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")

    @event.listens_for(engine, "connect")
    def _low_limit(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # As an SQLite built with the historical default of 999 variables a statement.
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    store = Store(engine)
    store.upgrade()
    count = 2_500
    metas = _metas(count)
    row_ids = store.add_embedded(metas, _vectors(count, 1), "m")
    again = store.add_embedded(metas, _vectors(count, 2), "m")  # every video known now
    assert np.array_equal(again, row_ids)
    store.link_query(store.query_id("q"), [(m.video_id, n) for n, m in enumerate(metas)])
    found, vectors = store.vectors_for_rows(row_ids.tolist())
    assert sorted(found.tolist()) == sorted(row_ids.tolist()) and vectors.shape == (count, DIM)
    assert store.embedded_ids([m.video_id for m in metas], "m") == {m.video_id for m in metas}
    removed = delete_videos(store, [m.video_id for m in metas], "m")
    assert sorted(removed.tolist()) == sorted(row_ids.tolist())
    assert store.counts("m")["vectors"] == 0
