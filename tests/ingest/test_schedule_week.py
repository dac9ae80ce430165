"""A simulated week of scheduled ingestion with the real model and CLI, and the CLI's quota
exit, run history and SIGTERM handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from indexer.ingest.queries import run_queries
from indexer.service import build_service
from indexer.settings import Settings
from indexer.youtube.queryfile import load_queries_file
from indexer.youtube.quota import pacific_day
from search.cli import app
from search.eval import samples
from tests.fakes.youtube import FakeVideo, FakeYouTube

pytestmark = pytest.mark.slow

PACIFIC = ZoneInfo("America/Los_Angeles")
QUERIES, RESULTS, PER_PAGE, VIDEOS = 20, 50, 5, 240
runner = CliRunner()


@pytest.fixture
def week_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeYouTube]:
    """240 videos; 20 queries of 50 results each (10 pages of 5), overlapping."""
    videos = [FakeVideo(video_id=samples.video_id_for(f"week:{i}"), title=f"clip {i}",
                        view_count=i, tags=("week",)) for i in range(VIDEOS)]
    searches = {f"topic {q:02d}": [videos[(q * 11 + k) % VIDEOS].video_id
                                   for k in range(RESULTS)] for q in range(QUERIES)}
    with FakeYouTube(videos, searches, search_quota=10_000) as fake:
        monkeypatch.setenv("YOUTUBE_API_KEY", fake.api_key)
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", fake.api_endpoint)
        monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", fake.thumbnail_base)
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", fake.thumbnail_host)
        monkeypatch.setenv("THUMBSEARCH_SEARCH_QUOTA", "30")
        yield fake


def _queries_file(tmp_path: Path) -> Path:
    path = tmp_path / "queries.toml"
    path.write_text("".join(f'[[queries]]\nq = "topic {q:02d}"\npages = 10\n'
                            f'per_page = {PER_PAGE}\n\n' for q in range(QUERIES)))
    return path


def test_a_week_of_scheduled_runs_within_30_searches_a_day(
        week_fake: FakeYouTube, tmp_path: Path) -> None:
    fake = week_fake
    specs = load_queries_file(_queries_file(tmp_path))
    moment = datetime(2026, 12, 1, 6, 0, tzinfo=PACIFIC).astimezone(UTC)
    service = build_service(Settings.from_env(), clock=lambda: moment)
    calls_per_day: Counter[str] = Counter()
    statuses = []
    try:
        for day in range(7):
            for hour in (6, 18):  # `schedule --every 12h`, Pacific time
                moment = datetime(2026, 12, 1 + day, hour, 0, tzinfo=PACIFIC).astimezone(UTC)
                before = fake.search_calls
                summary = run_queries(service, specs)
                calls_per_day[pacific_day(moment).isoformat()] += fake.search_calls - before
                statuses.append("quota" if summary.stopped else "done")
                assert not summary.failed
        history = service.ledger.history()
    finally:
        service.close()

    # No day over budget, by the server's count and by the ledger's.
    assert len(calls_per_day) == 7 and max(calls_per_day.values()) <= 30
    assert all(day["search"] <= 30 for day in history.values())
    assert sum(calls_per_day.values()) == QUERIES * 10  # every page of every query, once
    # No page fetched twice.
    sent = [(r.param("q"), r.param("pageToken")) for r in fake.requests
            if r.path == "/youtube/v3/search"]
    assert len(sent) == len(set(sent))
    # Every query advanced every day it had budget, and all of them reached their last page.
    per_query = Counter(q for q, _ in sent)
    assert set(per_query) == {s.q for s in specs} and set(per_query.values()) == {10}
    first_day = [q for q, _ in sent[:30]]
    assert len(set(first_day)) == QUERIES  # one round covers every query before any repeats
    assert statuses[:12] == ["quota"] * 12 and statuses[-2:] == ["done", "done"]

    # All new videos embedded, enriched and searchable.
    found = {vid for ids in fake.searches.values() for vid in ids}
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert stats["videos"] == stats["vectors"] == stats["index"]["size"] == len(found)
    probe = sorted(found)[0]
    result = runner.invoke(app, ["similar", "-k", "3", "--json", "--", probe])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == 3
    runs = runner.invoke(app, ["runs", "--limit", "14"])
    assert runs.exit_code == 0
    rows = runs.output.strip().splitlines()[1:]
    assert len(rows) == 14 and sum(r.split("\t")[4] == "quota" for r in rows) == 12
    as_json = json.loads(runner.invoke(app, ["runs", "--json", "-n", "50"]).output)
    assert sum(r["quota"]["search"] for r in as_json) == QUERIES * 10
    assert sum(r["new"] for r in as_json) == len(found)
    print("\n$ thumbsearch runs --limit 14\n" + runs.output, end="")  # shown with pytest -s


def test_cli_queries_file_quota_exit_runs_and_stats(week_fake: FakeYouTube, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBSEARCH_SEARCH_QUOTA", "3")
    path = _queries_file(tmp_path)
    result = runner.invoke(app, ["ingest", "--queries-file", str(path), "--json"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert "resets at midnight Pacific" in lines[-1] and "Traceback" not in result.output
    summary = json.loads("\n".join(lines[:-1]))
    assert summary["pages"] == 3 and summary["api_calls"] == {"search": 3, "videos": 1}
    again = runner.invoke(app, ["ingest", "--queries-file", str(path)])
    assert again.exit_code == 3 and week_fake.search_calls == 3
    runs = json.loads(runner.invoke(app, ["runs", "--json"]).output)
    assert [r["status"] for r in runs] == ["quota", "quota"]
    assert runs[0]["per_query"]["topic 00"]["next_page_token"]
    stats = runner.invoke(app, ["stats"])
    assert "search.list 3/3 calls" in stats.output
    for args, message in [(["ingest"], "give search queries"),
                          (["ingest", "x", "--queries-file", str(path)], "not both"),
                          (["ingest", "--queries-file", str(tmp_path / "none.toml")],
                           "does not exist"),
                          (["schedule", str(path), "--every", "soon"], "not a duration"),
                          (["refresh", "--older-than", "0d"], "must be positive")]:
        bad = runner.invoke(app, args)
        assert bad.exit_code in (1, 2) and message in bad.output, bad.output


def test_schedule_stops_after_the_batch_on_sigterm(week_fake: FakeYouTube,
                                                   tmp_path: Path) -> None:
    env = {**os.environ, "THUMBSEARCH_SEARCH_QUOTA": "0"}  # batches end at once, no model
    exe = Path(sys.executable).with_name("thumbsearch")
    proc = subprocess.Popen([str(exe), "schedule", str(_queries_file(tmp_path)), "--every",
                             "1h"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("batch: queries 20, pages 0") and "stopped" in line
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping after the current batch" in err and "Traceback" not in err
