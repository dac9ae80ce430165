"""`add-ids`: thumbnails of listed ids through the real stages, details within the quota.

The fake YouTube servers run on loopback; TinyEmbedder stands in for the model except
in the two tests that drive the real command line.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from indexer.errors import ModelError, WriterBusyError
from indexer.ingest.enrich import unenriched_video_ids
from indexer.ingest.idlist import IdListSummary, add_video_ids
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.schema import videos
from indexer.store.writer import writer_lock
from indexer.youtube.gone import GONE_FROM_API, gone_reasons
from search.cli import app
from search.idlist import read_id_list, youtube_ids
from tests.fakes.clock import Clock
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeVideo, FakeYouTube

runner = CliRunner()


@pytest.fixture
def clock() -> Clock:
    """The store's clock (and so the quota ledger's Pacific day)."""
    return Clock(datetime(2026, 3, 2, 18, 0, tzinfo=UTC))


@pytest.fixture
def services(youtube_env: FakeYouTube, clock: Clock) -> Iterator[list[Service]]:
    made: list[Service] = []
    yield made
    for service in made:
        service.close()


def _service(made: list[Service], clock: Clock) -> Service:
    service = build_service(Settings.from_env(), embedder=TinyEmbedder(), clock=clock,
                            sleep=lambda _s: None)
    made.append(service)
    return service


def _catalogue(fake: FakeYouTube) -> dict[str, FakeVideo]:
    return fake.videos


def _videos_list_ids(fake: FakeYouTube) -> list[list[str]]:
    return [(r.param("id") or "").split(",") for r in fake.requests
            if r.path == "/youtube/v3/videos"]


def _good_ids(fake: FakeYouTube) -> list[str]:
    """The 61 videos "reuploads" and "cats" find: every thumbnail there, none gone."""
    ids = list(dict.fromkeys(fake.searches["reuploads"] + fake.searches["cats"]))
    assert len(ids) == 61
    return ids


def test_lines_urls_and_a_csv_column_give_the_same_ids(tmp_path: Path) -> None:
    ids = ["dQw4w9WgXcQ", "-abcDEF1234", "a_b-C_d-E_f", "ZZZZZZZZZZ0"]
    plain = tmp_path / "ids.txt"
    plain.write_text(
        "# ids to add\n\n"
        f"{ids[0]}\n"
        f"https://www.youtube.com/watch?v={ids[1]}&t=42\n"
        f"https://youtu.be/{ids[2]}\n"
        f"  www.youtube.com/shorts/{ids[3]}  \n"
        f"{ids[0]}\n"  # a repeat
        "not an id\n"
        "local:0123456789abcdef\n", encoding="utf-8")
    listed = read_id_list(str(plain))
    found, bad = youtube_ids(listed, str(plain))
    assert found == ids
    assert [(b.line, b.text) for b in bad] == [(8, "not an id"), (9, "local:0123456789abcdef")]
    assert "local image id" in (bad[1].error or "")

    table = tmp_path / "videos.csv"
    table.write_text("title,url,views\n"
                     f'"Never, ever",https://www.youtube.com/watch?v={ids[0]},1\n'
                     f"B,https://youtu.be/{ids[1]},2\n"
                     "C,,3\n"
                     f"D,{ids[2]},4\n"
                     f"E,https://www.youtube.com/embed/{ids[3]},5\n"
                     "F,https://vimeo.com/12345,6\n", encoding="utf-8")
    found, bad = youtube_ids(read_id_list(str(table), column="url"), str(table))
    assert found == ids
    assert [(b.line, b.text) for b in bad] == [(7, "https://vimeo.com/12345")]
    assert youtube_ids(read_id_list(str(table), column="URL"), str(table))[0] == ids
    # A .csv without --column: its first column; a first row holding an id is data.
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{ids[0]},x\n{ids[1]},y\n", encoding="utf-8")
    assert youtube_ids(read_id_list(str(bare), as_csv=True), str(bare))[0] == ids[:2]
    headed = tmp_path / "headed.csv"
    headed.write_text(f"video_id,label\n{ids[2]},x\n", encoding="utf-8")
    assert youtube_ids(read_id_list(str(headed), as_csv=True), str(headed))[0] == [ids[2]]


@pytest.mark.usefixtures("backend")
def test_ids_are_stored_embedded_indexed_and_given_details(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    ids = _good_ids(fake)
    service = _service(services, clock)
    summary = add_video_ids(service, ids)
    assert (summary.ids, summary.run.new, summary.run.known) == (61, 61, 0)
    assert summary.run.failed == [] and summary.gone == [] and summary.already_gone == 0
    assert summary.run.enriched == 61 and summary.unenriched == 0 and not summary.stopped
    # Thumbnails: one request each, by the known URL; no search.list call at all.
    assert fake.thumbnail_requests == dict.fromkeys(ids, 1)
    assert {r.path for r in fake.requests if r.server == "thumbnails"} == {
        f"/vi/{v}/mqdefault.jpg" for v in ids}
    assert fake.search_calls == 0
    # Details: 50 ids a call, every id asked for once.
    calls = _videos_list_ids(fake)
    assert [len(c) for c in calls] == [50, 11]
    assert sorted(v for c in calls for v in c) == sorted(ids)
    assert summary.run.videos_calls == 2 and service.ledger.use("units").used == 2
    catalogue = _catalogue(fake)
    with service.store.engine.connect() as conn:
        rows = {r["video_id"]: r for r in conn.execute(select(videos)).mappings()}
    assert set(rows) == set(ids)
    for video_id, row in rows.items():
        video = catalogue[video_id]
        assert row["title"] == video.title and row["channel_title"] == video.channel_title
        assert row["view_count"] == video.view_count and row["duration"] == video.duration
        assert row["thumbnail_url"] == fake.thumbnail_url(video_id)
        assert row["details_fetched_at"] is not None
    assert service.index().size == 61
    assert summary.to_json()["api_calls"] == {"search": 0, "videos": 2}


class DiesOnThirdBatch(TinyEmbedder):
    """Embeds two batches, waits until both are stored, then fails as a dying model would."""

    def __init__(self, stored: Callable[[], int]) -> None:
        super().__init__()
        self.stored = stored

    def embed(self, batch: np.ndarray) -> np.ndarray:
        if len(self.batches) == 2:
            deadline = time.monotonic() + 30
            while self.stored() < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            raise ModelError("the model stopped")
        return super().embed(batch)


@pytest.mark.usefixtures("backend")
def test_a_run_that_died_is_resumed_without_fetching_anything_twice(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    ids = _good_ids(fake)
    settings = dataclasses.replace(Settings.from_env(), batch_size=10)
    first = build_service(settings, clock=clock, embedder=DiesOnThirdBatch(
        lambda: first.store.counts("tiny-test")["vectors"]))
    services.append(first)
    with pytest.raises(ModelError, match="the model stopped"):
        add_video_ids(first, ids)
    stored = set(first.store.get_videos(ids))
    assert len(stored) == 20 and first.store.counts("tiny-test")["vectors"] == 20
    assert fake.videos_calls == 0  # the first group of 50 never completed
    fetched = fake.thumbnail_requests

    second = add_video_ids(_service(services, clock), ids)
    assert second.run.known == len(stored) and second.run.new == len(ids) - len(stored)
    after = fake.thumbnail_requests
    assert all(after[v] == fetched[v] for v in stored)  # nothing stored is fetched again
    assert all(after[v] == fetched[v] + 1 for v in ids if v not in stored)
    assert second.run.enriched == len(ids) and second.unenriched == 0

    # Everything stored and enriched: a third run sends no request at all.
    before = len(fake.requests)
    third = add_video_ids(_service(services, clock), ids)
    assert (third.run.new, third.run.known, third.run.enriched) == (0, len(ids), 0)
    assert len(fake.requests) == before


@pytest.mark.usefixtures("backend")
def test_the_units_quota_stops_details_not_thumbnails_and_the_next_day_finishes(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = youtube_env
    ids = _good_ids(fake)
    monkeypatch.setenv("THUMBSEARCH_UNITS_QUOTA", "1")
    service = _service(services, clock)
    first = add_video_ids(service, ids)
    assert first.stopped and "resets at midnight Pacific" in first.stopped
    assert first.run.new == 61 and first.run.enriched == 50 and first.unenriched == 11
    # The ledger refused the second call before it was sent.
    assert fake.videos_calls == 1 and service.ledger.use("units").used == 1
    assert service.index().size == 61
    assert json.loads(json.dumps(first.to_json()))["unenriched"] == 11

    same_day = add_video_ids(_service(services, clock), ids)
    assert same_day.stopped and same_day.run.enriched == 0 and fake.videos_calls == 1

    clock.now += timedelta(days=1)
    thumbnails = sum(fake.thumbnail_requests.values())
    second = add_video_ids(_service(services, clock), ids)
    assert not second.stopped
    assert second.run.known == 61 and second.run.new == 0
    assert second.run.enriched == 11 and second.unenriched == 0
    assert sum(fake.thumbnail_requests.values()) == thumbnails
    assert [len(c) for c in _videos_list_ids(fake)] == [50, 11]
    assert not set(_videos_list_ids(fake)[0]) & set(_videos_list_ids(fake)[1])


@pytest.mark.usefixtures("backend")
def test_youtube_answering_quota_exceeded_stops_details_for_the_day(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube) -> None:
    youtube_env.units_quota = 0
    service = _service(services, clock)
    summary = add_video_ids(service, youtube_env.searches["cats"])
    assert summary.stopped and summary.run.new == 3 and summary.run.enriched == 0
    assert summary.unenriched == 3 and youtube_env.videos_calls == 1
    assert service.ledger.use("units").exhausted


@pytest.mark.usefixtures("backend")
def test_missing_thumbnails_and_ids_youtube_dropped_are_recorded_as_gone(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    catalogue = _catalogue(fake)
    coffee = fake.searches["coffee"]
    missing = next(v for v in coffee if catalogue[v].thumbnail_missing)
    deleted = next(v for v in coffee if catalogue[v].deleted)
    corrupt = next(v for v in coffee if catalogue[v].corrupt_thumbnail)
    unknown = "Zz0123456_-"
    good = [v for v in coffee if v not in (missing, deleted, corrupt)]
    ids = [*good, missing, unknown, deleted, corrupt]
    service = _service(services, clock)
    first = add_video_ids(service, ids)
    gone = {g.video_id: g.reason for g in first.gone}
    assert set(gone) == {missing, unknown, deleted}
    assert all("404" in why for why in gone.values())
    assert [f.video_id for f in first.run.failed] == [corrupt]
    assert first.run.new == len(good) and first.run.enriched == len(good)
    assert gone_reasons(service.store, ids) == gone

    # Gone ids are not fetched again; a failed one is tried again.
    requests = fake.thumbnail_requests
    again = add_video_ids(_service(services, clock), ids)
    assert again.already_gone == 3 and again.gone == [] and again.run.known == len(good)
    assert [f.video_id for f in again.run.failed] == [corrupt]
    after = fake.thumbnail_requests
    assert all(after[v] == requests[v] for v in (missing, unknown, deleted))
    assert after[corrupt] == requests[corrupt] + 1


@pytest.mark.usefixtures("backend")
def test_a_stored_video_videos_list_leaves_out_is_gone_and_kept(
        services: list[Service], clock: Clock, youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    ids = fake.searches["space"]
    service = _service(services, clock)
    plain = add_video_ids(service, ids, details=False)
    assert plain.run.new == 9 and plain.run.videos_calls == 0 and plain.unenriched == 9
    assert fake.videos_calls == 0
    dropped = ids[4]
    fake.put(dataclasses.replace(fake.videos[dropped], deleted=True))

    later = add_video_ids(_service(services, clock), ids)
    assert [(g.video_id, g.reason) for g in later.gone] == [(dropped, GONE_FROM_API)]
    assert later.run.enriched == 8 and later.unenriched == 0
    assert service.store.get_vector(dropped, "tiny-test") is not None  # kept until pruned
    assert dropped not in unenriched_video_ids(service.store, linked_only=False)
    calls = fake.videos_calls
    last = add_video_ids(_service(services, clock), ids)
    assert fake.videos_calls == calls and last.run.known == 9 and last.gone == []
    # Found again by videos.list: no longer gone.
    fake.put(dataclasses.replace(fake.videos[dropped], deleted=False))
    from indexer.ingest.enrich import enrich_videos

    enrich_videos(service, last.run, [dropped])
    assert gone_reasons(service.store, [dropped]) == {}


@pytest.mark.usefixtures("backend")
def test_a_second_writer_is_refused(services: list[Service], clock: Clock,
                                    youtube_env: FakeYouTube, isolated_env: Path) -> None:
    service = _service(services, clock)
    with writer_lock(isolated_env, "test"), pytest.raises(WriterBusyError):
        add_video_ids(service, youtube_env.searches["cats"])
    assert sum(youtube_env.thumbnail_requests.values()) == 0


BAD_INPUTS = [
    (["{tmp}/missing.txt"], "no such file"),
    (["{tmp}"], "is a directory"),
    (["{tmp}/empty.txt"], "holds no video ids"),
    (["{tmp}/comments.txt"], "holds no video ids"),
    (["{tmp}/junk.txt"], "none of the 3 entries"),
    (["{tmp}/binary.txt"], "not UTF-8"),
    (["{tmp}/table.csv", "--column", "video"], "has no column 'video'"),
    (["{tmp}/table.txt", "--column", "video"], "has no column 'video'"),
    (["{tmp}/table.csv", "--column", "label"], "none of the 2 entries"),
    (["{tmp}/header.csv", "--column", "url"], "holds no video ids"),
    (["{tmp}/broken.csv"], "not valid CSV"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_1(args: list[str], expected: str, tmp_path: Path,
                                          isolated_env: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "comments.txt").write_text("# nothing here\n\n   \n")
    (tmp_path / "junk.txt").write_text("hello\nhttps://example.com/watch?v=dQw4w9WgXcQ\nftp://x\n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81garbage")
    table = "url,label\nhttps://youtu.be/dQw4w9WgXcQ,music\n-abcDEF1234,other\n"
    (tmp_path / "table.csv").write_text(table)
    (tmp_path / "table.txt").write_text(table)
    (tmp_path / "header.csv").write_text("url,label\n")
    (tmp_path / "broken.csv").write_text('id\n"' + "x" * 200_000 + '"\n')  # over csv's limit
    argv = ["add-ids", *(a.format(tmp=tmp_path) for a in args)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert expected in result.stderr and "Traceback" not in result.output
    assert not (isolated_env / "thumbsearch.sqlite3").exists()


@pytest.mark.usefixtures("backend")
def test_a_missing_api_key_fails_before_anything_is_written(
        fake_youtube: FakeYouTube, tmp_path: Path, isolated_env: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(fake_youtube.searches["cats"]))
    result = runner.invoke(app, ["add-ids", str(ids)])
    assert result.exit_code == 1 and "YOUTUBE_API_KEY" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (isolated_env / "thumbsearch.sqlite3").exists()


def test_help_names_the_options() -> None:
    result = runner.invoke(app, ["add-ids", "--help"])
    assert result.exit_code == 0
    for option in ("--column", "--no-details", "--wait", "--json"):
        assert option in result.output
    assert "add-ids" in runner.invoke(app, ["--help"]).output


@pytest.mark.slow
def test_cli_json_text_and_warnings_with_the_real_model(youtube_env: FakeYouTube,
                                                        tmp_path: Path) -> None:
    cats = youtube_env.searches["cats"]
    table = tmp_path / "picks.csv"
    table.write_text("title,link\n"
                     + "".join(f"cat {i},https://www.youtube.com/watch?v={v}\n"
                               for i, v in enumerate(cats))
                     + "bad,https://vimeo.com/1\nworse,nope\nalso,x y z\nmore,???\n")
    result = runner.invoke(app, ["add-ids", str(table), "--column", "link", "--json"])
    assert result.exit_code == 0, result.output
    warning = result.stderr.strip()
    assert warning.count("\n") == 0 and warning.startswith("warning: skipped 4 of 7 entries")
    assert "line 5: 'https://vimeo.com/1'" in warning and "and 1 more" in warning
    data = json.loads(result.stdout)
    assert isinstance(data.pop("run_id"), int)
    assert data == {"invalid": 4, "ids": 3, "new": 3, "known": 0, "already_gone": 0,
                    "gone": [], "failed": [], "enriched": 3, "unenriched": 0,
                    "api_calls": {"search": 0, "videos": 1}, "skipped": {},
                    "watch_matches": 0}
    again = runner.invoke(app, ["add-ids", str(table), "--column", "link"])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == (
        "ids 3 (4 invalid skipped): new videos 0, already known 3, gone 0 (and 0 gone "
        "before), failed 0, details 0 (0 waiting), API calls: videos.list 0")


@pytest.mark.slow
def test_console_script_end_to_end(youtube_env: FakeYouTube, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    exe = Path(sys.executable).with_name("thumbsearch")
    ids = tmp_path / "ids.txt"
    missing = next(v for v in youtube_env.searches["coffee"]
                   if youtube_env.videos[v].thumbnail_missing)
    ids.write_text("\n".join([*youtube_env.searches["cats"], missing]) + "\n")
    monkeypatch.setenv("THUMBSEARCH_UNITS_QUOTA", "0")
    done = subprocess.run([str(exe), "add-ids", str(ids)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("ids 4 (0 invalid skipped): new videos 3, already known 0, "
                                  "gone 1")
    assert f"  gone {missing}: no image at" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("stopped: the day's budget")
    assert youtube_env.videos_calls == 0
    monkeypatch.setenv("THUMBSEARCH_UNITS_QUOTA", "10")
    done = subprocess.run([str(exe), "add-ids", str(ids), "--json"], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["known"], summary["already_gone"], summary["enriched"]) == (3, 1, 3)
    assert youtube_env.videos_calls == 1


def test_summary_json_shape() -> None:
    keys = set(IdListSummary(ids=0).to_json())
    assert keys == {"ids", "new", "known", "already_gone", "gone", "failed", "enriched",
                    "unenriched", "api_calls", "skipped", "run_id", "watch_matches"}
