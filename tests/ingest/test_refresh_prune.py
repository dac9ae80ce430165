"""``refresh --prune`` removes a video only on two answers a day apart, never on one odd answer.

The fake API plays YouTube (a deleted video is left out of videos.list, a corpus all marked
deleted makes it answer 200 ``{"items": []}``); an injected clock moves days forward.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from indexer.doctor import check_corpus
from indexer.ingest.enrich import refresh_videos, store_details
from indexer.ingest.queries import run_queries
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.schema import embeddings, gone_videos, videos
from indexer.youtube.gone import GONE_FROM_API, gone_reasons
from indexer.youtube.queryfile import QuerySpec
from search.cli import app
from search.neighbours import similar_to_video
from tests.fakes.clock import Clock
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeYouTube

runner = CliRunner()
MODEL = "tiny-test"
DAY = timedelta(days=1)


@pytest.fixture
def clock() -> Clock:
    # 40 days before the real now: a CLI run (real clock) then sees the corpus as old.
    return Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=40))


@pytest.fixture
def make_service(youtube_env: FakeYouTube, clock: Clock) -> Iterator[Callable[[], Service]]:
    made: list[Service] = []

    def make() -> Service:
        service = build_service(Settings.from_env(), embedder=TinyEmbedder(), clock=clock,
                                sleep=lambda _s: None)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def _corpus(make: Callable[[], Service], fake: FakeYouTube, clock: Clock) -> tuple[Service,
                                                                                    list[str]]:
    """Nine stored videos (query "space"), their API data 31 days old by the clock."""
    service = make()
    run_queries(service, [QuerySpec(q="space")], resume=False)
    ids = list(fake.searches["space"])
    assert service.index().size == len(ids) == 9
    clock.now += timedelta(days=31)
    return service, ids


def _delete(fake: FakeYouTube, *video_ids: str, deleted: bool = True) -> None:
    for video_id in video_ids:
        fake.put(dataclasses.replace(fake.videos[video_id], deleted=deleted))


def _stored(service: Service) -> set[str]:
    with service.store.engine.connect() as conn:
        return {r[0] for r in conn.execute(select(videos.c.video_id))}


def _marks(service: Service) -> dict[str, datetime | None]:
    with service.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT video_id, missing_since FROM gone_videos"))
        return {r[0]: r[1] for r in rows}


def _newest_row_video(service: Service) -> str:
    with service.store.engine.connect() as conn:
        return str(conn.execute(select(embeddings.c.video_id)
                                .order_by(embeddings.c.id.desc()).limit(1)).scalar())


def test_an_empty_answer_deletes_nothing_and_is_reported_as_suspect(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    service, ids = _corpus(make_service, youtube_env, clock)
    _delete(youtube_env, *ids)  # videos.list now answers 200 {"items": []}
    for _ in range(2):  # two answers a day apart: still nothing, both suspect
        summary = refresh_videos(service, prune=True)
        assert _stored(service) == set(ids)
        assert service.store.counts(MODEL)["vectors"] == 9 and service.index().size == 9
        assert summary.pruned == 0 and summary.gone == [] and summary.marked == 0
        assert summary.suspect_batches == 1 and summary.videos_calls == 1
        assert _marks(service) == {}
        clock.now += 2 * DAY
    last = [r for r in youtube_env.requests if r.path == "/youtube/v3/videos"][-1]
    assert last.status == 200
    service.close()
    # The CLI says so, in words and in JSON, and exits 0: nothing was lost.
    result = runner.invoke(app, ["refresh", "--prune"])
    assert result.exit_code == 0, result.output
    assert "suspect" in result.output and "nothing was marked or deleted" in result.output
    data = json.loads(runner.invoke(app, ["refresh", "--prune", "--json"]).output)
    assert data["suspect_batches"] == 1 and data["pruned"] == 0 and data["marked"] == 0
    assert len(_stored(make_service())) == 9


def test_a_video_missing_once_is_marked_not_deleted(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    service, ids = _corpus(make_service, youtube_env, clock)
    gone = ids[1]
    _delete(youtube_env, gone)
    summary = refresh_videos(service, prune=True)
    assert gone in _stored(service)
    assert service.store.get_vector(gone, MODEL) is not None and service.index().size == 9
    assert summary.pruned == 0 and summary.marked == 1 and summary.gone == [gone]
    assert summary.suspect_batches == 0 and summary.refreshed == 8
    assert set(_marks(service)) == {gone}
    assert gone_reasons(service.store, [gone]) == {gone: GONE_FROM_API}
    # Asked again the same day: the mark stays as it was, nothing goes.
    first_mark = _marks(service)[gone]
    clock.now += timedelta(hours=23, minutes=59)
    again = refresh_videos(service, prune=True)
    assert again.pruned == 0 and again.marked == 0 and again.gone == [gone]
    assert gone in _stored(service) and _marks(service)[gone] == first_mark


def _missing_again_a_day_later(make_service: Callable[[], Service], fake: FakeYouTube,
                               clock: Clock) -> None:
    service, ids = _corpus(make_service, fake, clock)
    gone = _newest_row_video(service)  # its row id is the index watermark
    _delete(fake, gone)
    assert refresh_videos(service, prune=True).marked == 1
    clock.now += timedelta(hours=23)
    assert refresh_videos(service, prune=True).pruned == 0  # a day has not passed
    clock.now += timedelta(hours=1)
    summary = refresh_videos(service, prune=True)
    assert summary.pruned == 1 and list(summary.confirmed) == [gone]
    assert summary.suspect_batches == 0 and summary.videos_calls == 1
    assert gone not in _stored(service) and service.store.get_vector(gone, MODEL) is None
    assert service.index().size == 8
    report = check_corpus(service, sample=100)
    assert report.ok, report.problems
    rest = [v for v in ids if v != gone]
    found = similar_to_video(service, rest[0], k=10)
    assert {n.video_id for n in found.results} == set(rest[1:])
    reopened = build_service(service.settings, embedder=TinyEmbedder())
    assert reopened.index().size == 8  # the snapshot was saved without it
    assert check_corpus(reopened).ok
    reopened.close()
    assert gone_reasons(service.store, [gone]) == {gone: GONE_FROM_API}  # id lists skip it


def test_missing_again_a_day_later_is_deleted_and_the_index_stays_consistent(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    _missing_again_a_day_later(make_service, youtube_env, clock)


@pytest.mark.postgres
def test_missing_again_a_day_later_on_postgres(
        pg_env: str, make_service: Callable[[], Service], youtube_env: FakeYouTube,
        clock: Clock) -> None:
    _missing_again_a_day_later(make_service, youtube_env, clock)


def test_doctor_is_clean_after_the_newest_rows_are_deleted(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    from indexer.ingest.enrich import delete_videos

    service, _ids = _corpus(make_service, youtube_env, clock)
    index = service.index()
    index.remove(delete_videos(service.store, [_newest_row_video(service)], MODEL))
    index.save()
    report = check_corpus(service)
    assert report.ok, report.problems
    # A database really behind its index (restored from an older backup) is still named.
    meta = service.settings.index_dir / f"{MODEL}.json"
    data = json.loads(meta.read_text())
    data["watermark"] = 10**6
    meta.write_text(json.dumps(data))
    assert any("past the database's last row" in p for p in check_corpus(service).problems)


def test_two_gone_videos_alone_in_a_batch_are_pruned_the_control_answers(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    service, ids = _corpus(make_service, youtube_env, clock)
    pair = {ids[2], ids[5]}
    _delete(youtube_env, *pair)
    assert refresh_videos(service, prune=True).marked == 2
    clock.now += DAY
    marks = _marks(service)
    # Only the two are old now, so a video known to exist is asked with them. When it is
    # left out too, the answer is suspect: nothing goes, the control is not marked.
    _delete(youtube_env, *ids)
    broken = refresh_videos(service, prune=True)
    assert broken.suspect_batches == 1 and broken.pruned == 0 and broken.marked == 0
    assert _stored(service) == set(ids) and _marks(service) == marks
    _delete(youtube_env, *(set(ids) - pair), deleted=False)
    summary = refresh_videos(service, prune=True)
    assert summary.suspect_batches == 0 and summary.pruned == 2 and summary.refreshed == 0
    assert _stored(service) == set(ids) - pair
    asked = [r.param("id") or "" for r in youtube_env.requests
             if r.path == "/youtube/v3/videos"][-1].split(",")
    assert len(asked) == 3 and pair < set(asked)


def test_a_video_seen_again_in_between_is_unmarked(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    service, ids = _corpus(make_service, youtube_env, clock)
    back, fresh = ids[3], ids[4]
    _delete(youtube_env, back, fresh)
    assert refresh_videos(service, prune=True).marked == 2
    assert set(_marks(service)) == {back, fresh}
    # videos.list returns one of them again: unmarked.
    _delete(youtube_env, back, deleted=False)
    clock.now += DAY
    summary = refresh_videos(service, prune=True)
    assert summary.unmarked == 1 and summary.pruned == 1 and summary.refreshed == 1
    assert back in _stored(service) and set(_marks(service)) == {fresh}
    # Missing again later: a first mark again, not a removal.
    _delete(youtube_env, back)
    clock.now += 31 * DAY
    summary = refresh_videos(service, prune=True)
    assert summary.pruned == 0 and summary.marked == 1 and back in _stored(service)
    # Any ingest path that stores fresh details unmarks too.
    _delete(youtube_env, back, deleted=False)
    details = service.youtube.video_details([back])
    store_details(service.store, details)
    assert set(_marks(service)) == {fresh} and back in _stored(service)
    clock.now += 2 * DAY
    assert refresh_videos(service, timedelta(hours=1), prune=True).pruned == 0


def test_dry_run_lists_what_would_go_and_changes_nothing(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    service, ids = _corpus(make_service, youtube_env, clock)  # 9 days before the real now
    gone, later = ids[0], ids[6]
    _delete(youtube_env, gone)
    assert refresh_videos(service, prune=True).marked == 1
    title = service.store.get_video(gone).title  # type: ignore[union-attr]
    _delete(youtube_env, later)  # missing for the first time at the dry run
    before_marks = _marks(service)
    with service.store.engine.connect() as conn:
        before_rows = sorted(tuple(r) for r in conn.execute(select(videos)))
    service.close()
    # All nine are old for the dry run: seven answer, one is confirmed, one newly missing.
    result = runner.invoke(app, ["refresh", "--prune", "--dry-run", "--older-than", "1d"])
    assert result.exit_code == 0, result.output
    assert "would delete 1 video" in result.output
    assert gone in result.output and title in result.output and later not in result.output
    data = json.loads(runner.invoke(app, ["refresh", "--prune", "--dry-run", "--json",
                                          "--older-than", "1d"]).output)
    assert data["dry_run"] is True and data["pruned"] == 0
    assert data["confirmed"] == [{"video_id": gone, "title": title}]
    check = make_service()
    assert _marks(check) == before_marks and check.index().size == 9
    with check.store.engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(select(videos))) == before_rows
    check.close()
    usage = runner.invoke(app, ["refresh", "--dry-run"])
    assert usage.exit_code == 2 and "--dry-run" in usage.output and "--prune" in usage.output
    assert "Traceback" not in usage.output
    help_text = runner.invoke(app, ["refresh", "--help"]).output
    assert "--dry-run" in help_text
    # The real prune removes exactly what the dry run listed; doctor stays clean.
    done = runner.invoke(app, ["refresh", "--prune", "--older-than", "1d"])
    assert done.exit_code == 0 and "pruned 1" in done.output, done.output
    assert _stored(make_service()) == set(ids) - {gone}
    assert set(_marks(make_service())) == {gone, later}
    # The CLI runs the default model; the tiny model's index on disk dropped the row too.
    after = make_service()
    assert after.index().size == 8 and check_corpus(after).ok, check_corpus(after).problems


def test_the_migration_upgrades_a_database_and_keeps_gone_records(tmp_path: Path) -> None:
    from alembic import command

    from indexer.store.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0005")
    engine = make_engine(url)
    noted = datetime(2026, 11, 30, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"video_id": "dQw4w9WgXcQ", "reason": "thumbnail 404", "noted_at": noted},
        {"video_id": "aaaaaaaaaaa", "reason": GONE_FROM_API, "noted_at": noted}]
    with engine.begin() as conn:  # the table as revision 0005 left it
        conn.execute(text("INSERT INTO gone_videos (video_id, reason, noted_at) "
                          "VALUES (:video_id, :reason, :noted_at)"), rows)
    engine.dispose()
    command.upgrade(config, "head")
    engine = make_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("gone_videos")}
    assert "missing_since" in columns
    with engine.connect() as conn:
        kept = {r.video_id: (r.reason, r.missing_since) for r in conn.execute(
            select(gone_videos.c.video_id, gone_videos.c.reason, gone_videos.c.missing_since))}
    assert kept == {"dQw4w9WgXcQ": ("thumbnail 404", None), "aaaaaaaaaaa": (GONE_FROM_API, None)}
    engine.dispose()
    command.downgrade(config, "0005")
    command.upgrade(config, "head")
    engine = make_engine(url)
    with engine.connect() as conn:
        assert len(conn.execute(select(gone_videos.c.video_id)).all()) == 2
    engine.dispose()


def test_gone_records_and_prune_marks_live_together(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    from indexer.youtube.gone import mark_missing, missing_marks, record_gone

    service, ids = _corpus(make_service, youtube_env, clock)
    store, video = service.store, ids[7]
    record_gone(store, {video: "thumbnail 404"})  # a record without a mark
    assert missing_marks(store, [video]) == {}
    assert mark_missing(store, [video]) == [video]  # the record gets its first mark
    first = missing_marks(store, [video])[video]
    assert first == clock.now and gone_reasons(store, [video]) == {video: GONE_FROM_API}
    clock.now += DAY
    assert mark_missing(store, [video]) == []  # the first mark stays
    record_gone(store, {video: "thumbnail 404 again"})  # more evidence: the day is not restarted
    assert missing_marks(store, [video]) == {video: first}
    store_details(store, service.youtube.video_details([video]))  # it is back
    assert missing_marks(store, [video]) == {} and gone_reasons(store, [video]) == {}


def test_enrichment_records_nothing_gone_from_an_answer_missing_every_id(
        make_service: Callable[[], Service], youtube_env: FakeYouTube, clock: Clock) -> None:
    from indexer.ingest.enrich import enrich_videos
    from indexer.ingest.summary import IngestSummary

    service, ids = _corpus(make_service, youtube_env, clock)
    _delete(youtube_env, *ids)  # the fake now answers 200 {"items": []} for these ids
    summary = IngestSummary()
    enrich_videos(service, summary, ids[:5])
    assert summary.suspect_batches == 1
    assert summary.gone == []
    assert gone_reasons(service.store, ids) == {}
    _delete(youtube_env, *ids[1:], deleted=False)  # one id missing, the others answered
    enrich_videos(service, summary, ids[:5])
    assert summary.gone == [ids[0]]
    assert gone_reasons(service.store, ids) == {ids[0]: GONE_FROM_API}
