"""A hostile YouTube Data API: malformed pages, bad items, odd numbers and redirects.

The real client (google-api-python-client over httplib2) talks to
tests.fakes.hostile_api on loopback; thumbnails come from the fake thumbnail host.
Each run goes through the command line (typer's CliRunner) into a real SQLite home
seeded with three videos (random vectors, no model), and checks what is stored.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.models import model_spec
from indexer.records import VideoMeta
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.fakes.corpus import record_figure, video_id
from tests.fakes.embedder import StandInEmbedder
from tests.fakes.hostile import Behaviour, HostileServer
from tests.fakes.hostile_api import (
    SEARCH_PATH,
    VIDEOS_PATH,
    HostileApi,
    json_answer,
    raw_answer,
    redirect,
    search_item,
    search_page,
    video_item,
    videos_page,
)
from tests.fakes.youtube import FakeYouTube

runner = CliRunner()
SEEDED = [video_id(i, "h") for i in range(3)]
FRESH = video_id(99, "n")  # a valid id no one stored


@pytest.fixture(autouse=True)
def no_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the tests marked slow (the real model), the command line gets a stand-in for
    the default model, of its id and size: those runs store no new video, so none has a
    reason to load TensorFlow."""
    if request.node.get_closest_marker("slow") is not None:
        return
    spec = model_spec(Settings.from_env().model)
    monkeypatch.setattr("indexer.service.settings_embedder", lambda *_, **__: (
        StandInEmbedder(spec.model_id, spec.dim, spec.input_size)))


@pytest.fixture
def api(youtube_env: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileApi]:
    """The hostile API as the client's endpoint; thumbnails from the fake thumbnail host."""
    with HostileApi() as hostile:
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", hostile.endpoint)
        yield hostile


@pytest.fixture
def home(isolated_env: Path) -> Path:
    """A home holding three YouTube videos with random vectors of the default model."""
    with build_service(Settings.from_env()) as service:
        service.prepare_for_writing()
        metas = [VideoMeta(video_id=v, source="youtube", title=f"seeded {v}",
                           thumbnail_url=f"https://i.ytimg.com/vi/{v}/mqdefault.jpg")
                 for v in SEEDED]
        vectors = np.random.default_rng(0).standard_normal(
            (len(metas), service.spec.dim)).astype(np.float32)
        rows = service.store.add_embedded(metas, vectors, service.spec.model_id)
        index = service.index()
        index.add(rows, vectors)
        index.save()
    return isolated_env


def snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables an ingest writes videos into."""
    with sqlite3.connect(home / "thumbsearch.sqlite3") as conn:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("videos", "embeddings", "query_videos", "gone_videos")}


def video_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "thumbsearch.sqlite3") as conn:
        return {r[0] for r in conn.execute("SELECT video_id FROM videos")}


def one_error_line(result: Any) -> str:
    """The run's only output line, which must be an error line (no traceback, no log)."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _ids_file(tmp_path: Path, ids: list[str]) -> str:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{v}\n" for v in ids), encoding="utf-8")
    return str(path)


def _gzip_bomb() -> bytes:
    """About 20 KB that inflate to 20 MiB of JSON (spaces inside an object)."""
    return gzip.compress(b"{" + b" " * (20 << 20) + b"}", 9)


def _deep(depth: int) -> bytes:
    return b'{"items": ' + b"[" * depth + b"]" * depth + b"}"


# -- malformed pages: one error line, nothing stored -------------------------------

SEARCH_PAGES: dict[str, Behaviour] = {
    "not json": raw_answer(b"<html><body>hello</body></html>", "text/html"),
    "empty body": raw_answer(b""),
    "cut-off json": raw_answer(b'{"items": [{"id": '),
    "null": json_answer(None),
    "a list": json_answer([search_item(SEEDED[0])]),
    "a string": json_answer("items"),
    "items null": json_answer({"kind": "youtube#searchListResponse", "items": None}),
    "items an object": json_answer({"items": {"0": search_item(SEEDED[0])}}),
    "more items than maxResults": json_answer(search_page(
        [search_item(video_id(i, "m")) for i in range(6)])),
    "nextPageToken a number": json_answer({**search_page([]), "nextPageToken": 7}),
    "nextPageToken 5000 characters": json_answer(search_page([], "t" * 5000)),
    "nested 100000 deep": raw_answer(_deep(100_000)),
    "17 MiB of spaces": raw_answer(b"{" + b" " * (17 << 20) + b"}"),
    "an endless body": Behaviour("endless", content_type="application/json"),
    "a gzip bomb": Behaviour("ok", _gzip_bomb(), "application/json",
                             headers=(("Content-Encoding", "gzip"),)),
}


@pytest.mark.parametrize("case", list(SEARCH_PAGES))
def test_a_malformed_search_page_is_one_line_and_stores_nothing(
        api: HostileApi, home: Path, case: str) -> None:
    before = snapshot(home)
    api.push(SEARCH_PATH, SEARCH_PAGES[case])
    line = one_error_line(runner.invoke(app, ["ingest", "cats", "--per-page", "5"]))
    assert "search.list" in line and len(line) < 300, line
    assert snapshot(home) == before
    # The home still works: the next page is the documented shape.
    api.push(SEARCH_PATH, json_answer(search_page([search_item(SEEDED[0])])))
    result = runner.invoke(app, ["ingest", "cats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["known"] == 1


VIDEOS_PAGES: dict[str, Behaviour] = {
    "not json": raw_answer(b"Service Unavailable?", "text/plain"),
    "null": json_answer(None),
    "a list": json_answer([video_item(SEEDED[0])]),
    "items null": json_answer({"kind": "youtube#videoListResponse", "items": None}),
    "items a string": json_answer({"items": "none"}),
    "more items than ids asked": json_answer(videos_page(
        [video_item(v) for v in SEEDED] + [video_item(video_id(7, "x"))])),
}


@pytest.mark.parametrize("case", list(VIDEOS_PAGES))
def test_a_malformed_videos_page_is_one_line_and_stores_nothing(
        api: HostileApi, home: Path, tmp_path: Path, case: str) -> None:
    before = snapshot(home)
    api.push(VIDEOS_PATH, VIDEOS_PAGES[case])
    ids = _ids_file(tmp_path, SEEDED)
    line = one_error_line(runner.invoke(app, ["add-ids", ids, "--json"]))
    assert "videos.list" in line and len(line) < 300, line
    assert snapshot(home) == before
    result = runner.invoke(app, ["add-ids", ids, "--json"])  # a documented answer now
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["enriched"] == 3


# -- bad items: skipped, counted with their reason, nothing stored from them -------

BAD_ITEMS: dict[str, Any] = {
    "videoId an integer": search_item(12345678901),
    "videoId 5000 characters": search_item("A" * 5000),
    "videoId with a newline": search_item(FRESH + "\n"),
    "videoId of 10 characters": search_item(FRESH[:10]),
    "videoId with a slash": search_item(FRESH[:10] + "/"),
    "videoId null": search_item(None),
    "id a string": {**search_item(FRESH), "id": FRESH},
    "a channel result": {**search_item(FRESH), "id": {"kind": "youtube#channel",
                                                      "channelId": "UCxyz"}},
    "kind of a playlist with a videoId": {**search_item(FRESH), "id": {
        "kind": "youtube#playlist", "videoId": FRESH}},
    "thumbnails a string": search_item(FRESH, thumbnails="big"),
    "thumbnail url a number": search_item(FRESH, thumbnails={"medium": {"url": 5}}),
    "snippet a list": {**search_item(FRESH), "snippet": []},
    "title a number": search_item(FRESH, title=5),
    "the same video twice": search_item(SEEDED[0]),
    "item null": None,
    "item a string": "youtube#video",
}


@pytest.mark.parametrize("case", list(BAD_ITEMS))
def test_a_bad_search_item_is_skipped_and_counted(api: HostileApi, home: Path,
                                                  case: str) -> None:
    before = snapshot(home)
    api.push(SEARCH_PATH, json_answer(search_page([BAD_ITEMS[case], search_item(SEEDED[0])])))
    result = runner.invoke(app, ["ingest", "cats", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["known"] == 1 and summary["new"] == 0
    assert sum(summary["skipped"].values()) == 1, summary
    assert all(reason.startswith("search.list") for reason in summary["skipped"])
    after = snapshot(home)
    assert video_ids(home) == set(SEEDED)
    assert {k: v for k, v in after.items() if k != "query_videos"} == {
        k: v for k, v in before.items() if k != "query_videos"}
    assert [row[1] for row in after["query_videos"]] == [SEEDED[0]]
    clean = runner.invoke(app, ["ingest", "cats"])  # a documented page skips nothing
    assert clean.exit_code == 0 and "skipped" not in clean.stdout, clean.output


def test_the_plain_summary_names_skipped_items(api: HostileApi, home: Path) -> None:
    api.push(SEARCH_PATH, json_answer(search_page([search_item("A" * 5000),
                                                   search_item(SEEDED[0])])))
    result = runner.invoke(app, ["ingest", "cats"])
    assert result.exit_code == 0, result.output
    assert "skipped 1" in result.stdout, result.stdout
    assert "search.list: id.videoId is not a video id" in result.stdout, result.stdout
    assert "A" * 100 not in result.output


# -- videos.list: odd numbers and fields are dropped and counted, the rest stored --

DETAILS: dict[str, tuple[dict[str, Any], str, str, Any]] = {
    # case: (video_item arguments, column checked, skipped reason word, stored value)
    "duration an integer": ({"duration": 12}, "duration_seconds", "duration", None),
    "duration of 10**12 weeks": ({"duration": "P1000000000000W"}, "duration_seconds",
                                 "duration", None),
    "duration of 200 years in days": ({"duration": "P73000D"}, "duration_seconds",
                                      "duration", None),
    "duration not ISO 8601": ({"duration": "4 minutes"}, "duration_seconds", "duration",
                              None),
    "viewCount of 400 digits": ({"view_count": "9" * 400}, "view_count", "viewCount", None),
    "viewCount 2**63": ({"view_count": str(2**63)}, "view_count", "viewCount", None),
    "viewCount negative": ({"view_count": "-5"}, "view_count", "viewCount", None),
    "viewCount a float": ({"view_count": "1e3"}, "view_count", "viewCount", None),
    "viewCount a number": ({"view_count": 10}, "view_count", "viewCount", None),
    "likeCount with a newline": ({"like_count": "5\n"}, "like_count", "likeCount", None),
    "commentCount a list": ({"comment_count": [1]}, "comment_count", "commentCount", None),
    "publishedAt in year 9999": ({"publishedAt": "9999-12-31T23:59:59Z"}, "published_at",
                                 "publishedAt", None),
    "publishedAt not a date": ({"publishedAt": "yesterday"}, "published_at", "publishedAt",
                               None),
    "title of a megabyte": ({"title": "t" * 1_000_000}, "length(title)", "", 1000),
    "tags of 100000 entries": ({"tags": ["x"] * 100_000}, "json_array_length(tags)", "",
                               500),
}


@pytest.mark.parametrize("case", list(DETAILS))
def test_odd_details_are_bounded_before_they_are_stored(
        api: HostileApi, home: Path, tmp_path: Path, case: str) -> None:
    spoil, column, reason, stored = DETAILS[case]
    api.push(VIDEOS_PATH, json_answer(videos_page(
        [video_item(SEEDED[0], **spoil)] + [video_item(v) for v in SEEDED[1:]])))
    result = runner.invoke(app, ["add-ids", _ids_file(tmp_path, SEEDED), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["enriched"] == 3 and summary["gone"] == [], summary
    if reason:
        assert [k for k in summary["skipped"] if reason in k] and sum(
            summary["skipped"].values()) == 1, summary
    with sqlite3.connect(home / "thumbsearch.sqlite3") as conn:
        value = conn.execute(f"SELECT {column} FROM videos WHERE video_id = ?",
                             (SEEDED[0],)).fetchone()[0]
        good = conn.execute("SELECT view_count, duration_seconds, title FROM videos "
                            "WHERE video_id = ?", (SEEDED[1],)).fetchone()
    if stored is None:
        assert value is None
    else:
        assert value <= stored
    assert good == (10, 253, f"details {SEEDED[1]}")


def test_an_unattributable_details_item_marks_nothing_gone(
        api: HostileApi, home: Path, tmp_path: Path) -> None:
    api.push(VIDEOS_PATH, json_answer(videos_page(
        [video_item(12345)] + [video_item(v) for v in SEEDED[1:]])))
    result = runner.invoke(app, ["add-ids", _ids_file(tmp_path, SEEDED), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["gone"] == [] and summary["enriched"] == 2, summary
    assert sum(summary["skipped"].values()) == 1
    assert snapshot(home)["gone_videos"] == []


# -- redirects ----------------------------------------------------------------------

REDIRECT_STATUSES = [301, 302, 303, 307, 308]
OTHER_ORIGINS = [
    "https://{host}/youtube/v3/search",  # same host and port, another scheme
    "http://localhost:{port}/youtube/v3/search",  # another host name for the same server
    "http://127.0.0.1:1/youtube/v3/search",  # another port
]
MALFORMED_LOCATIONS = [
    "http://[::1", "http://[::1/youtube/v3/search", "http://127.0.0.1:99999/x",
    "http://127.0.0.1:port/x", "http:///nohost", "//[::1/youtube/v3/search",
    "//127.0.0.1:0x50/x",
]


@pytest.mark.parametrize("status", REDIRECT_STATUSES)
def test_a_redirect_off_the_endpoint_is_refused(api: HostileApi, home: Path,
                                                status: int) -> None:
    with HostileApi() as elsewhere:
        elsewhere.push(SEARCH_PATH, json_answer(search_page([search_item(FRESH)])))
        api.push(SEARCH_PATH, redirect(elsewhere.endpoint + "youtube/v3/search?q=cats",
                                       status))
        before = snapshot(home)
        line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
        assert "redirected to another host" in line, line
        assert "key=" not in line
        assert elsewhere.server.requests == []
        assert snapshot(home) == before


@pytest.mark.parametrize("location", OTHER_ORIGINS)
def test_a_redirect_to_another_origin_of_the_same_machine_is_refused(
        api: HostileApi, home: Path, location: str) -> None:
    api.push(SEARCH_PATH, redirect(location.format(host=api.server.host,
                                                   port=api.server.port)))
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "redirected to another host" in line, line
    assert len(api.calls(SEARCH_PATH)) == 1


def test_a_redirect_on_the_endpoint_is_followed(api: HostileApi, home: Path) -> None:
    api.push(SEARCH_PATH, redirect("/youtube/v3/search?moved=1"),
             json_answer(search_page([search_item(SEEDED[1])])))
    result = runner.invoke(app, ["ingest", "cats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["known"] == 1


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS)
def test_a_malformed_location_is_one_line(api: HostileApi, home: Path, location: str) -> None:
    before = snapshot(home)
    api.push(SEARCH_PATH, redirect(location))
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "redirect" in line, line
    assert snapshot(home) == before


def test_a_redirect_loop_on_the_endpoint_ends_in_one_line(api: HostileApi, home: Path) -> None:
    api.push(SEARCH_PATH, *[redirect("/youtube/v3/search?again=1")] * 12)
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "redirect" in line, line


# -- a run that cannot start: one line, nothing before it -------------------------

def test_a_rejected_key_prints_one_line_and_nothing_before(
        youtube_env: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEY", "not-the-key")
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "API_KEY_INVALID" in line


def test_an_unreachable_endpoint_prints_one_line_and_nothing_before(
        youtube_env: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> None:
    with HostileServer(lambda _p: Behaviour("ok")) as gone:
        endpoint = f"http://{gone.host}/"
    monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", endpoint)  # nothing listens there now
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "cannot reach the YouTube API" in line


def test_a_missing_key_prints_one_line(youtube_env: FakeYouTube,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY")
    line = one_error_line(runner.invoke(app, ["ingest", "cats"]))
    assert "YOUTUBE_API_KEY" in line


def test_the_hostile_api_classes_are_counted() -> None:
    redirects = len(REDIRECT_STATUSES) + len(OTHER_ORIGINS) + len(MALFORMED_LOCATIONS) + 2
    total = (len(SEARCH_PAGES) + len(VIDEOS_PAGES) + len(BAD_ITEMS) + len(DETAILS) + 1
             + redirects)
    record_figure("hostile_api_inputs", total)
    record_figure("hostile_api_classes", {
        "malformed pages": len(SEARCH_PAGES) + len(VIDEOS_PAGES), "bad items": len(BAD_ITEMS) + 1,
        "odd details": len(DETAILS), "redirects": redirects})
    assert total >= 60


@pytest.mark.slow
def test_bad_items_beside_good_ones_and_the_next_ingest(api: HostileApi, home: Path,
                                                        youtube_env: FakeYouTube) -> None:
    """The real model embeds the good videos of a page that also holds bad ids; the
    next ingest in the same home works (a 5000-character id once broke every later one)."""
    def url(video: str) -> str:
        return youtube_env.thumbnail_url(video, "mqdefault")

    cats, space = youtube_env.searches["cats"], youtube_env.searches["space"]
    api.push(SEARCH_PATH, json_answer(search_page(
        [search_item("A" * 5000, url(cats[0])), search_item(cats[0] + "\n", url(cats[0]))]
        + [search_item(v, url(v)) for v in cats])))
    first = runner.invoke(app, ["ingest", "cats", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["new"], sum(summary["skipped"].values())) == (3, 2), summary
    assert video_ids(home) == set(SEEDED) | set(cats)
    fetched = {r.path.split("/")[2] for r in youtube_env.requests if r.server == "thumbnails"}
    assert fetched == set(cats)
    api.push(SEARCH_PATH, json_answer(search_page([search_item(v, url(v)) for v in space])))
    second = runner.invoke(app, ["ingest", "space", "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["new"] == len(space)
    similar = runner.invoke(app, ["similar", cats[0], "--json"])
    assert similar.exit_code == 0, similar.output
