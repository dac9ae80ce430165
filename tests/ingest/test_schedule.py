"""Scheduled ingestion against the fake API: quota ledger, resume, fairness, retries, lock,
enrichment, refresh and prune. A tiny embedder and an injected clock and sleep: no model, no
real waiting."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from indexer.errors import ApiKeyInvalidError, QueriesFileError, QuotaExceededError, WriterBusyError
from indexer.ingest.enrich import refresh_videos
from indexer.ingest.queries import run_queries
from indexer.ingest.schedule import run_schedule
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.writer import writer_lock
from indexer.youtube.client import backoff_delay
from indexer.youtube.cursors import load_cursors
from indexer.youtube.queryfile import QuerySpec, parse_duration, parse_queries
from indexer.youtube.quota import QuotaLedger, pacific_day
from tests.fakes.clock import Clock
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeYouTube

PACIFIC = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 12, 1, 9, 0, tzinfo=PACIFIC).astimezone(UTC))


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_service(youtube_env: FakeYouTube, monkeypatch: pytest.MonkeyPatch, clock: Clock,
                 sleeps: list[float]) -> Iterator[object]:
    made: list[Service] = []

    def make(search_quota: int = 100, units_quota: int = 10_000) -> Service:
        monkeypatch.setenv("THUMBSEARCH_SEARCH_QUOTA", str(search_quota))
        monkeypatch.setenv("THUMBSEARCH_UNITS_QUOTA", str(units_quota))
        service = build_service(Settings.from_env(), embedder=TinyEmbedder(), clock=clock,
                                sleep=sleeps.append)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def _searches(fake: FakeYouTube) -> list[tuple[str | None, str | None]]:
    return [(r.param("q"), r.param("pageToken")) for r in fake.requests
            if r.path == "/youtube/v3/search"]


def test_queries_file_parsing() -> None:
    specs = parse_queries('''
[[queries]]
q = "cats"
pages = 3
order = "date"
published_within = "7d"
priority = 5

[[queries]]
q = "dogs"
region_code = "gb"
published_after = 2026-01-01T00:00:00Z
''', pages=2, per_page=10)
    assert specs[0] == QuerySpec(q="cats", pages=3, per_page=10, order="date",
                                 published_within=timedelta(days=7), priority=5)
    assert specs[1].pages == 2 and specs[1].region_code == "GB"
    assert specs[1].published_after == datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 12, 8, tzinfo=UTC)
    assert specs[0].options(now).params()["publishedAfter"] == "2026-12-01T00:00:00Z"
    assert specs[0].key != QuerySpec(q="cats", per_page=10, order="date").key
    assert specs[0].key == QuerySpec(q="cats", pages=9, per_page=10, order="date",
                                     published_within=timedelta(days=7)).key  # paging aside
    for bad, message in [
        ('[[queries]]\nq = ""', "q must be"),
        ('[[queries]]\nq = "a"\npages = 11', "pages must be"),
        ('[[queries]]\nq = "a"\ncolour = 1', "unknown key"),
        ('[[queries]]\nq = "a"\norder = "random"', "order must be one of"),
        ('[[queries]]\nq = "a"\n[[queries]]\nq = "a"', "repeats query 1"),
        ('[[queries]]\nq = "a"\npublished_within = "soon"', "not a duration"),
        ("queries = 3", "no queries"),
        ("[[queries]\n", "not valid TOML"),
    ]:
        with pytest.raises(QueriesFileError, match=message):
            parse_queries(bad)
    assert parse_duration("1d12h") == timedelta(hours=36)


@pytest.mark.usefixtures("backend")
def test_ledger_charges_atomically_per_pacific_day(make_service: object, clock: Clock) -> None:
    service = make_service(search_quota=2)  # type: ignore[operator]
    service.prepare_for_writing()
    ledger: QuotaLedger = service.ledger
    ledger.charge("search")
    ledger.charge("search")
    with pytest.raises(QuotaExceededError, match="2 of 2 spent"):
        ledger.charge("search")
    assert ledger.use("search").used == 2  # a refused charge costs nothing
    ledger.charge("units", 5)
    # 23:59 Pacific is still the same day; 00:00 starts a new one.
    clock.now = datetime(2026, 12, 1, 23, 59, tzinfo=PACIFIC).astimezone(UTC)
    with pytest.raises(QuotaExceededError):
        ledger.charge("search")
    clock.now = datetime(2026, 12, 2, 0, 0, tzinfo=PACIFIC).astimezone(UTC)
    ledger.charge("search")
    assert ledger.history() == {"2026-12-01": {"search": 2, "units": 5},
                                "2026-12-02": {"search": 1}}


@pytest.mark.usefixtures("backend")
def test_concurrent_charges_never_overspend(make_service: object) -> None:
    service = make_service(search_quota=25)  # type: ignore[operator]
    service.prepare_for_writing()
    granted: list[int] = []

    def worker() -> None:
        ledger = service.ledger
        for _ in range(10):
            try:
                ledger.charge("search")
                granted.append(1)
            except QuotaExceededError:
                pass

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 25 == service.ledger.use("search").used


@pytest.mark.usefixtures("backend")
def test_quota_stop_resumes_without_repeating_pages_across_midnight(
        make_service: object, youtube_env: FakeYouTube, clock: Clock) -> None:
    fake = youtube_env
    service = make_service(search_quota=3)  # type: ignore[operator]
    specs = [QuerySpec(q="reuploads", pages=10, per_page=10), QuerySpec(q="space", pages=2,
                                                                       per_page=5)]
    first = run_queries(service, specs)
    assert first.stopped and "search.list" in first.stopped and first.search_calls == 3
    assert fake.search_calls == 3
    assert first.per_query["reuploads"]["next_page_token"]
    # Same day: the budget is spent, nothing is sent.
    again = run_queries(service, specs)
    assert again.stopped and again.search_calls == 0 and fake.search_calls == 3
    clock.now += timedelta(hours=16)  # past midnight Pacific
    third = run_queries(service, specs)
    sent = _searches(fake)
    assert len(sent) == len(set(sent)) == 6  # no page fetched twice
    assert third.stopped
    cursors = load_cursors(service.store, [(s.key, 0) for s in specs])
    assert cursors[specs[1].key].passes_done == 1  # space: 9 results, 2 pages, pass done
    assert cursors[specs[0].key].pages_total == 4 and cursors[specs[0].key].open
    assert service.ledger.history() == {"2026-12-01": {"search": 3, "units": 1},
                                        "2026-12-02": {"search": 3, "units": 1}}
    # The day after, a finished pass starts again; an open one goes on.
    clock.now += timedelta(days=1)
    run_queries(service, specs)
    # space has read fewer pages, so it goes first; reuploads resumes at offset 40.
    assert _searches(fake)[6:] == [("space", None), ("reuploads", "CCgQAA"),
                                   ("space", "CAUQAA")]


@pytest.mark.usefixtures("backend")
def test_fair_sharing_by_priority_then_round_robin(make_service: object,
                                                   youtube_env: FakeYouTube,
                                                   clock: Clock) -> None:
    service = make_service(search_quota=5)  # type: ignore[operator]
    specs = [QuerySpec(q="reuploads", pages=10, per_page=5),
             QuerySpec(q="photography", pages=3, per_page=3),
             QuerySpec(q="space", pages=3, per_page=3, priority=1)]
    run_queries(service, specs)
    order = [q for q, _ in _searches(youtube_env)]
    assert order == ["space", "reuploads", "photography", "space", "reuploads"]
    clock.now += timedelta(days=1)
    run_queries(service, specs)
    # Fewest pages first among equals: photography is behind, so it goes before reuploads.
    assert [q for q, _ in _searches(youtube_env)][5:7] == ["space", "photography"]


@pytest.mark.usefixtures("backend")
def test_transient_errors_back_off_and_each_attempt_is_charged(
        make_service: object, youtube_env: FakeYouTube, sleeps: list[float]) -> None:
    service = make_service()  # type: ignore[operator]
    youtube_env.inject("/youtube/v3/search", 503, times=1)
    youtube_env.inject("/youtube/v3/search", 429, times=1)
    youtube_env.inject("/youtube/v3/search", 403, "rateLimitExceeded", times=1)
    summary = run_queries(service, [QuerySpec(q="cats")], resume=False)
    assert summary.new == 3 and summary.search_calls == 4 and not summary.stopped
    assert len(sleeps) == 3 and 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 <= sleeps[2] <= 4
    assert service.ledger.use("search").used == 4
    assert backoff_delay(10, lambda: 1.0) == 32.0  # capped


@pytest.mark.usefixtures("backend")
def test_quota_exceeded_bad_key_and_bad_request_are_not_retried(
        make_service: object, youtube_env: FakeYouTube, sleeps: list[float], clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service()  # type: ignore[operator]
    youtube_env.inject("/youtube/v3/search", 403, "quotaExceeded", times=None)
    summary = run_queries(service, [QuerySpec(q="cats"), QuerySpec(q="space")])
    assert summary.stopped and "quota" in summary.stopped
    assert youtube_env.search_calls == 1 and sleeps == []
    assert service.ledger.use("search").exhausted  # no more calls today
    youtube_env.clear_injections()
    assert run_queries(service, [QuerySpec(q="cats")]).search_calls == 0
    monkeypatch.setenv("YOUTUBE_API_KEY", "wrong")
    # The next day, with a fresh budget: the call is made and the key refused.
    next_day = Clock(clock.now + timedelta(days=1))
    other = build_service(Settings.from_env(), embedder=TinyEmbedder(), clock=next_day,
                          sleep=sleeps.append)
    with pytest.raises(ApiKeyInvalidError, match="API_KEY_INVALID"):
        other.youtube.search_page("cats", None, 5)
    other.close()
    assert sleeps == []


@pytest.mark.usefixtures("backend")
def test_new_videos_get_their_details_in_batches_of_50(make_service: object,
                                                       youtube_env: FakeYouTube) -> None:
    from indexer.store.schema import videos

    service = make_service()  # type: ignore[operator]
    summary = run_queries(service, [QuerySpec(q="reuploads", pages=2, per_page=35)],
                          resume=False)
    assert summary.new == 60 and summary.enriched == 60 and summary.videos_calls == 2
    ids = [r.param("id") for r in youtube_env.requests if r.path == "/youtube/v3/videos"]
    assert [len((i or "").split(",")) for i in ids] == [50, 10]
    assert {r.param("part") for r in youtube_env.requests
            if r.path == "/youtube/v3/videos"} == {"snippet,contentDetails,statistics"}
    fake = youtube_env.videos
    with service.store.engine.connect() as conn:
        rows = list(conn.execute(select(videos)).mappings())
    for row in rows:
        video = fake[row["video_id"]]
        assert row["duration"] == video.duration and row["duration_seconds"] > 0
        assert row["view_count"] == video.view_count and row["tags"] == list(video.tags)
        assert row["category_id"] == video.category_id
        assert row["default_language"] == "en" and row["details_fetched_at"] is not None


@pytest.mark.usefixtures("backend")
def test_a_second_writer_exits_or_waits_and_a_crash_frees_the_lock(
        make_service: object, isolated_env: Path) -> None:
    service = make_service()  # type: ignore[operator]
    with writer_lock(isolated_env, "test"):
        with pytest.raises(WriterBusyError, match=r"another ingest run \(pid \d+, started"):
            run_queries(service, [QuerySpec(q="cats")])
        waited: list[float] = []
        ticks = iter(range(100))
        with pytest.raises(WriterBusyError, match="after waiting 1s"), writer_lock(
                isolated_env, "second", wait=1.0, sleep=waited.append,
                monotonic=lambda: next(ticks) * 0.3):
            pass
        assert waited
    # A process that dies holding the lock does not leave it stuck.
    code = (f"import os; from pathlib import Path; from indexer.store.writer import writer_lock\n"
            f"with writer_lock(Path({str(isolated_env)!r}), 'crash'):\n    os._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 9
    assert run_queries(service, [QuerySpec(q="cats")]).new == 3
    # Reads never take the lock.
    with writer_lock(isolated_env, "test"):
        assert service.store.counts("tiny-test")["vectors"] == 3


@pytest.mark.usefixtures("backend")
def test_refresh_updates_old_rows_and_prune_removes_gone_videos(
        make_service: object, youtube_env: FakeYouTube, clock: Clock) -> None:
    import dataclasses

    service = make_service()  # type: ignore[operator]
    run_queries(service, [QuerySpec(q="space")], resume=False)
    ids = youtube_env.searches["space"]
    assert service.index().size == 9
    clock.now += timedelta(days=10)
    assert refresh_videos(service).refreshed == 0  # nothing older than 30 days
    clock.now += timedelta(days=21)
    gone = ids[1]
    youtube_env.put(dataclasses.replace(youtube_env.videos[gone], deleted=True))
    youtube_env.put(dataclasses.replace(youtube_env.videos[ids[0]], view_count=123_456))
    kept = refresh_videos(service)
    assert kept.refreshed == 8 and kept.gone == [gone] and kept.pruned == 0
    assert kept.marked == 1  # marked only, without --prune
    assert service.store.get_video(gone) is not None
    # The 8 refreshed rows are new again; the gone one is still old. It goes only when
    # missing again at least a day after its mark (tests/ingest/test_refresh_prune.py).
    assert refresh_videos(service, prune=True).pruned == 0
    clock.now += timedelta(days=1)
    pruned = refresh_videos(service, prune=True)
    assert pruned.refreshed == 0 and pruned.pruned == 1 and pruned.videos_calls == 1
    assert service.store.get_video(gone) is None
    assert service.store.get_vector(gone, "tiny-test") is None
    assert service.index().size == 8
    reopened = build_service(service.settings, embedder=TinyEmbedder())
    assert reopened.index().size == 8  # the snapshot was saved without it
    reopened.close()
    with service.store.engine.connect() as conn:
        from indexer.store.schema import videos

        views = conn.execute(select(videos.c.view_count).where(
            videos.c.video_id == ids[0])).scalar()
    assert views == 123_456


@pytest.mark.usefixtures("backend")
def test_refresh_stops_at_the_units_quota(make_service: object, youtube_env: FakeYouTube,
                                          clock: Clock) -> None:
    service = make_service(units_quota=2)  # type: ignore[operator]
    run_queries(service, [QuerySpec(q="reuploads", pages=2, per_page=50)], resume=False)
    assert service.ledger.use("units").used == 2  # 60 new videos: two videos.list calls
    clock.now += timedelta(days=31)
    first = refresh_videos(service)
    assert first.refreshed == 60 and not first.stopped
    clock.now += timedelta(days=31)
    service.ledger.charge("units")
    half = refresh_videos(service)
    assert half.stopped and half.refreshed == 50  # one call left today: the oldest 50


@pytest.mark.usefixtures("backend")
def test_schedule_loop_runs_batches_until_stopped(make_service: object,
                                                  youtube_env: FakeYouTube,
                                                  clock: Clock) -> None:
    service = make_service(search_quota=2)  # type: ignore[operator]
    stop = threading.Event()
    pauses: list[float] = []
    lines: list[str] = []

    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        clock.now += timedelta(seconds=seconds)
        if len(pauses) == 3:
            stop.set()  # as SIGTERM would, between batches
        return stop.is_set()

    batches = run_schedule(
        service, lambda: [QuerySpec(q="reuploads", pages=10, per_page=20)],
        timedelta(hours=12), stop=stop, pause=pause, monotonic=lambda: 0.0,
        on_batch=lambda s: lines.append(f"{s.pages} {bool(s.stopped)}"))
    assert batches == 3 and pauses == [43_200.0] * 3
    assert lines == ["2 True", "0 True", "1 False"]  # day 1, same day, next day: pass done
    assert pacific_day(clock.now).isoformat() == "2026-12-02"  # moved by the pauses
    sent = _searches(youtube_env)
    assert len(sent) == len(set(sent)) == 3


@pytest.mark.usefixtures("backend")
def test_quota_message_says_when_it_resets(make_service: object) -> None:
    service = make_service(search_quota=0)  # type: ignore[operator]
    summary = run_queries(service, [QuerySpec(q="cats")])
    assert summary.stopped and "resets at midnight Pacific" in summary.stopped
    assert summary.search_calls == 0 and summary.per_query["cats"]["state"] == "stopped by quota"
