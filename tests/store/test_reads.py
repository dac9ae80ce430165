"""The lean SQLite reader answers every lookup read exactly as the SQLAlchemy store does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import StoreError
from indexer.records import VideoMeta
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.reads import IN_CHUNK, SqliteReads, sqlite_file
from search.neighbours import similar_to_video, similar_to_videos

MODEL_ROWS = 1_300  # more than two IN chunks


@pytest.fixture
def stored(settings: Settings) -> tuple[Service, list[str]]:
    """A SQLite corpus whose videos have every kind of column value, two models' vectors."""
    service = build_service(settings)
    service.prepare_for_writing()
    start = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    metas = [VideoMeta(video_id=f"vid{i:08d}", source="youtube" if i % 2 else "file",
                       title=f"t\u00e9 {i}", description="d" * (i % 7),
                       channel_id=f"UC{i % 5}", channel_title=f"chan {i % 5}",
                       published_at=None if i % 3 == 0 else start + timedelta(hours=i),
                       thumbnail_url=f"https://i.ytimg.com/vi/vid{i:08d}/mqdefault.jpg")
             for i in range(MODEL_ROWS)]
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(metas), service.spec.dim)).astype(np.float32)
    service.store.add_embedded(metas, vectors, service.spec.model_id)
    service.store.add_vectors([m.video_id for m in metas[:40]],
                              vectors[:40, :8].copy(), "other-model")
    return service, [m.video_id for m in metas]


def _lean(settings: Settings) -> SqliteReads:
    path = sqlite_file(settings.database_url)
    assert path is not None
    return SqliteReads(path)


def test_every_read_matches_the_store(stored: tuple[Service, list[str]],
                                      settings: Settings) -> None:
    service, ids = stored
    store, lean = service.store, _lean(settings)
    model = service.spec.model_id
    try:
        assert lean.exists() and store.exists()
        assert lean.counts(model) == store.counts(model)
        assert lean.counts("other-model") == store.counts("other-model") != lean.counts(model)
        for video_id in (ids[0], ids[-1], "missing0000"):
            ours, theirs = lean.get_vector(video_id, model), store.get_vector(video_id, model)
            assert (ours is None) == (theirs is None)
            if ours is not None and theirs is not None:
                assert ours[0] == theirs[0]
                np.testing.assert_array_equal(ours[1], theirs[1])
        wanted = [*ids[::-1], "missing0000", ids[3]]
        videos = lean.get_videos(wanted)
        assert len(videos) == MODEL_ROWS
        assert videos == store.get_videos(wanted)
        assert any(v.published_at is not None for v in videos.values())
        rows = list(range(-2, MODEL_ROWS + 60, 1))
        assert lean.video_ids_for_rows(rows) == store.video_ids_for_rows(rows)
        assert len(lean.video_ids_for_rows(rows)) == MODEL_ROWS + 40
        for after in (0, 7, MODEL_ROWS - 3, 10 * MODEL_ROWS):
            ours_batches = list(lean.iter_vectors(model, after=after, batch=IN_CHUNK))
            theirs_batches = list(store.iter_vectors(model, after=after, batch=IN_CHUNK))
            assert len(ours_batches) == len(theirs_batches)
            for (a_ids, a_vec), (b_ids, b_vec) in zip(ours_batches, theirs_batches,
                                                      strict=True):
                np.testing.assert_array_equal(a_ids, b_ids)
                np.testing.assert_array_equal(a_vec, b_vec)
        model_rows = [-1, *range(1, MODEL_ROWS + 1), 10 * MODEL_ROWS]  # one model: one dim
        a_ids, a_vec = lean.vectors_for_rows(model_rows)
        b_ids, b_vec = store.vectors_for_rows(model_rows)
        assert len(a_ids) == MODEL_ROWS
        np.testing.assert_array_equal(np.sort(a_ids), np.sort(b_ids))
        np.testing.assert_array_equal(a_vec[np.argsort(a_ids)], b_vec[np.argsort(b_ids)])
    finally:
        lean.close()
        service.close()


def test_lookups_only_service_answers_as_the_full_one(stored: tuple[Service, list[str]],
                                                      settings: Settings) -> None:
    service, ids = stored
    service.index().save()
    service.close()
    lean = build_service(settings, lookups_only=True)
    full = build_service(settings)
    try:
        assert isinstance(lean.require_corpus().reads, SqliteReads)
        assert lean._store is None
        assert similar_to_video(lean, ids[5], 7) == similar_to_video(full, ids[5], 7)
        many = [ids[1], "missing0000", ids[900]]
        assert similar_to_videos(lean, many, 4) == similar_to_videos(full, many, 4)
        assert lean._store is None  # nothing reached for SQLAlchemy
    finally:
        lean.close()
        full.close()


def test_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none" / "thumbsearch.sqlite3"
    lean = SqliteReads(path)
    assert not lean.exists()
    assert not path.exists() and not path.parent.exists()


def test_reader_cannot_write_and_a_broken_file_is_one_store_error(
        stored: tuple[Service, list[str]], settings: Settings, tmp_path: Path) -> None:
    service, ids = stored
    service.close()
    lean = _lean(settings)
    try:
        with pytest.raises(StoreError, match=r"readonly|read-only|query_only|attempt to write"):
            lean._rows("writing", "DELETE FROM videos")
        assert lean.get_videos(ids[:3]).keys() == set(ids[:3])
    finally:
        lean.close()
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="database error while") as caught:
        SqliteReads(broken).exists()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:////data/t.sqlite3", Path("/data/t.sqlite3")),
    ("sqlite:///rel/t.sqlite3", Path("rel/t.sqlite3")),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///t.sqlite3?mode=ro", None),
    ("sqlite+pysqlite:///t.sqlite3", None),
    ("postgresql+psycopg://u:p@127.0.0.1/db", None),
])
def test_only_plain_sqlite_urls_take_the_lean_path(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected


def test_an_open_service_answers_with_rows_stored_after_it_opened(
        stored: tuple[Service, list[str]], settings: Settings) -> None:
    writer, ids = stored
    writer.index().save()
    reader = build_service(settings, lookups_only=True)  # a query host, opened once
    try:
        before = similar_to_video(reader, ids[0], 3)
        twin = VideoMeta(video_id="twin0000000", source="youtube", title="the twin",
                         thumbnail_url="https://i.ytimg.com/vi/twin0000000/mqdefault.jpg")
        found = writer.store.get_vector(ids[0], writer.spec.model_id)
        assert found is not None
        writer.store.add_embedded([twin], found[1][None, :], writer.spec.model_id)
        after = similar_to_video(reader, ids[0], 3)
        assert "twin0000000" not in [n.video_id for n in before.results]
        assert after.results[0].video_id == "twin0000000"
        assert after.results[0].score == pytest.approx(1.0, abs=1e-5)
    finally:
        reader.close()
        writer.close()
