"""Malformed URLs and redirects at the image download boundary, and the download deadline.

A URL from a user (``similar --image``) or from a server (a ``Location`` header, a
thumbnail URL in a search answer) that is malformed, off the allowed hosts or not
http(s) is one FetchError for that request or item: the run goes on, the other items
are stored, the disallowed host is never contacted and a rerun does not crash either.
A stall before the response headers ends at the download deadline.
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.errors import DownloadBrokenError, FetchError
from indexer.images.fetch import HttpImageFetcher
from indexer.ingest.idlist import add_video_ids
from indexer.ingest.queries import ingest_queries
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.fakes.corpus import bulk_catalogue, record_figure, seed_corpus
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.hostile import Behaviour, HostileServer
from tests.fakes.youtube import FakeYouTube

runner = CliRunner()

# Location headers a thumbnail host might answer with: "{other}" is the port of a second
# server that is not allowed, "{me}" the port of the allowed one.
LOCATIONS: dict[str, str] = {
    "unclosed IPv6": "http://[::1",
    "unclosed IPv6, relative to the scheme": "//[::1",
    "IPv6 with junk after it": "http://[::1]x:{other}/x.jpg",
    "port out of range": "http://127.0.0.1:99999/x.jpg",
    "port not a number": "http://127.0.0.1:abc/x.jpg",
    "empty": "",
    "blank": "   ",
    "space inside": "/a b.jpg",
    "control character": "/a\x01b.jpg",
    "tab": "/a\tb.jpg",
    "NUL": "/a\x00b.jpg",
    "backslash before the host": "http://127.0.0.1:{other}\\@127.0.0.1:{me}/x.jpg",
    "huge path": "/" + "a" * 60_000,
    "huge host": "http://" + "a" * 5_000 + "/x.jpg",
    "no host": "http:///x.jpg",
    "scheme alone": "http:",
    "ftp": "ftp://127.0.0.1:{other}/x.jpg",
    "javascript": "javascript:alert(1)",
    "data": "data:image/jpeg;base64,AAAA",
    "relative to the scheme, off host": "//127.0.0.1:{other}/x.jpg",
    "another port": "http://127.0.0.1:{other}/x.jpg",
    "localhost": "http://localhost:{other}/x.jpg",
    "userinfo trick": "http://127.0.0.1:{me}@127.0.0.1:{other}/x.jpg",
    "non-ASCII host": "http://\u00fcn\u00efcode.example/x.jpg",
    "bad IDNA host": "http://xn--/x.jpg",
    "itself (a loop)": "{path}",
}

# An item whose redirect loops back to where it started after two hops.
LOOP = ("/loop/a", "/loop/b")


def _jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 18), color).save(out, "JPEG")
    return out.getvalue()


def _one_line(text: str) -> None:
    assert "\n" not in text and len(text) < 400, text


class _Pair:
    """An allowed hostile host redirecting with ``route``, and a host that is not allowed."""

    def __init__(self, route: Callable[[str, _Pair], Behaviour]) -> None:
        self.other = HostileServer(lambda path: Behaviour("ok", _jpeg((0, 0, 255))))
        self.server = HostileServer(lambda path: route(path, self))

    def location(self, template: str, path: str = "") -> str:
        return template.replace("{other}", str(self.other.port)).replace(
            "{me}", str(self.server.port)).replace("{path}", path)

    def __enter__(self) -> _Pair:
        self.other.__enter__()
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)
        self.other.__exit__(None, None, None)


def _redirect_start(template: str) -> Callable[[str, _Pair], Behaviour]:
    def route(path: str, pair: _Pair) -> Behaviour:
        if path == "/start":
            return Behaviour("redirect", status=302, location=pair.location(template, path))
        return Behaviour("ok", _jpeg((255, 0, 0)))
    return route


@pytest.mark.parametrize("template", list(LOCATIONS.values()), ids=list(LOCATIONS))
def test_a_bad_location_is_one_fetch_error_and_the_other_host_gets_nothing(
        template: str) -> None:
    with _Pair(_redirect_start(template)) as pair:
        fetcher = HttpImageFetcher([pair.server.host], timeout=5, retries=2)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(pair.server.url("/start"))
        _one_line(str(caught.value))
        assert pair.other.requests == []
        # Not a download a retry may fix: asked once.
        assert pair.server.requests == ["/start"]


def test_a_redirect_loop_is_named() -> None:
    def route(path: str, pair: _Pair) -> Behaviour:
        return Behaviour("redirect", status=302,
                         location=LOOP[(LOOP.index(path) + 1) % 2] if path in LOOP else "/x")

    with _Pair(route) as pair:
        fetcher = HttpImageFetcher([pair.server.host], timeout=5)
        with pytest.raises(FetchError, match="loop"):
            fetcher.fetch(pair.server.url(LOOP[0]))
        assert pair.server.requests == list(LOOP)


def test_a_relative_location_on_the_allowed_host_is_followed() -> None:
    def route(path: str, pair: _Pair) -> Behaviour:
        if path == "/vi/a/start":
            return Behaviour("redirect", status=307, location="../b/image.jpg?x=1")
        return Behaviour("ok", _jpeg((1, 2, 3))) if path == "/vi/b/image.jpg?x=1" \
            else Behaviour("status", status=404)

    with _Pair(route) as pair:
        data = HttpImageFetcher([pair.server.host], timeout=5).fetch(
            pair.server.url("/vi/a/start"))
        assert Image.open(io.BytesIO(data)).size == (32, 18)


BAD_USER_URLS = [
    "http://[::1",
    "https://[::1/x.jpg",
    "http://127.0.0.1:{me}/a b.jpg",
    "http://127.0.0.1:{me}/a\x01b.jpg",
    "http://127.0.0.1:{me}/a\nb.jpg",
    "http://127.0.0.1:99999/x.jpg",
    "http://127.0.0.1:x/x.jpg",
    "http://127.0.0.1:{me}/" + "a" * 100_000,
    "http://",
    "http:///x.jpg",
    " http://127.0.0.1:{me}/x.jpg",
    "http://127.0.0.1:{me}\\@127.0.0.1:{me}/x.jpg",
]


@pytest.mark.parametrize("template", BAD_USER_URLS, ids=[repr(u[:40]) for u in BAD_USER_URLS])
def test_a_malformed_url_given_is_refused_before_any_request(template: str) -> None:
    with _Pair(_redirect_start("/x.jpg")) as pair:
        fetcher = HttpImageFetcher([pair.server.host], timeout=5)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(pair.location(template))
        _one_line(str(caught.value))
        assert pair.server.requests == []


def _pipeline_route(bad: dict[str, str]) -> Callable[[str, _Pair], Behaviour]:
    """Thumbnails of good ids are images; each bad id's redirects with its Location."""
    def route(path: str, pair: _Pair) -> Behaviour:
        video_id = path.split("/")[2] if path.startswith("/vi/") else ""
        if video_id in bad:
            return Behaviour("redirect", status=302,
                             location=pair.location(bad[video_id], path))
        if video_id.startswith("good"):
            return Behaviour("ok", _jpeg((int(video_id[-1]) * 40, 90, 160)))
        return Behaviour("status", status=404)
    return route


def test_add_ids_counts_each_bad_redirect_as_a_failed_item_and_a_rerun_does_too(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = [f"good000000{n}" for n in range(1, 5)]
    bad = {f"bad{n:08d}": template for n, template in enumerate(LOCATIONS.values())}
    # The list is given bad ids first: a crash on one would leave every good one unstored.
    ids = [*bad, *good]
    with _Pair(_pipeline_route(bad)) as pair:
        monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", pair.server.url("/vi"))
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", pair.server.host)
        for run in (1, 2):
            with build_service(Settings.from_env(), embedder=TinyEmbedder()) as service:
                summary = add_video_ids(service, ids, details=False)
                assert summary.run.new == (len(good) if run == 1 else 0)
                assert summary.run.known == (0 if run == 1 else len(good))
                failed = {f.video_id: f.reason for f in summary.run.failed}
                assert set(failed) == set(bad), failed
                for reason in failed.values():
                    _one_line(reason)
                assert summary.gone == []  # a bad redirect is not "gone"
                assert set(service.store.embedded_ids(ids, "tiny-test")) == set(good)
                assert service.index().size == len(good)
        assert pair.other.requests == []
    record_figure("malformed_locations", len(LOCATIONS))


def test_ingest_counts_a_malformed_thumbnail_url_from_search_as_a_failed_item(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    videos, searches = bulk_catalogue(8)
    broken = {videos[1].video_id: "http://[::1", videos[4].video_id: "http://[::1]:99999/x.jpg",
              videos[6].video_id: "http://127.0.0.1:abc/x.jpg"}
    by_id = {v.video_id: v for v in videos}

    def route(path: str) -> Behaviour:
        video_id = path.split("/")[2] if path.startswith("/vi/") else ""
        if video_id in by_id:
            return Behaviour("ok", by_id[video_id].thumbnail_jpeg("mqdefault"))
        return Behaviour("status", status=404)

    with FakeYouTube(videos, searches) as fake, HostileServer(route) as thumbs:
        monkeypatch.setattr(fake, "thumbnail_url", lambda video_id, name="mqdefault":
                            broken.get(video_id) or thumbs.url(f"/vi/{video_id}/{name}.jpg"))
        settings = dataclasses.replace(Settings.from_env({
            "THUMBSEARCH_HOME": str(isolated_env),
            "YOUTUBE_API_KEY": fake.api_key, "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
            "THUMBSEARCH_THUMBNAIL_BASE": thumbs.url("/vi"),
            "THUMBSEARCH_ALLOWED_HOSTS": thumbs.host}), http_timeout=5.0)
        with build_service(settings, embedder=TinyEmbedder()) as service:
            summary = ingest_queries(service, ["bulk"], pages=1, per_page=8)
    assert {f.video_id for f in summary.failed} == set(broken)
    assert summary.new == len(videos) - len(broken)


@pytest.fixture
def corpus(isolated_env: Path) -> Path:
    """A home holding stored vectors of the default model (no TensorFlow needed)."""
    with build_service(Settings.from_env()) as service:
        seed_corpus(service, 5)
    return isolated_env


SIMILAR_URLS = ["http://[::1", "http://[::1]:80/x.jpg?", "https://[fe80::1%25eth0/x",
                "http://127.0.0.1:{me}/a b.jpg", "http://127.0.0.1:{me}/a\tb.jpg",
                "http://127.0.0.1:99999/x.jpg", "http://127.0.0.1:{me}/" + "a" * 50_000,
                "http://127.0.0.1:{me}/start"]


@pytest.mark.parametrize("template", SIMILAR_URLS, ids=[repr(u[:40]) for u in SIMILAR_URLS])
def test_similar_image_with_a_malformed_url_is_one_line_exit_1(
        corpus: Path, monkeypatch: pytest.MonkeyPatch, template: str) -> None:
    # /start redirects to an unclosed IPv6 URL: the server's malformed answer, same ending.
    with _Pair(_redirect_start("http://[::1")) as pair:
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", pair.server.host)
        result = runner.invoke(app, ["similar", "--image", pair.location(template)])
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert len(lines[0]) < 400
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit), repr(result.exception)
        assert pair.server.requests in ([], ["/start"])


def _stalls_over(server: HostileServer,
                 stalls_at: Callable[[str], bool] = lambda path: True) -> list[bool]:
    """The server's record of its stalls, once each one it began has ended (``stalls_at``
    says which requested paths it answers with a stall)."""
    for _ in range(200):
        if len(server.stalls) >= sum(map(stalls_at, server.requests)):
            break
        time.sleep(0.05)
    return list(server.stalls)


def test_a_stall_before_the_headers_ends_at_the_download_deadline() -> None:
    # The per-socket timeout (30 s) and the server's stall (5 s) are both longer than the
    # deadline: only the deadline can end the wait, and the client hangs up first.
    with HostileServer(lambda path: Behaviour("stall"), stall=5.0) as server:
        fetcher = HttpImageFetcher([server.host], timeout=30, retries=3, max_seconds=0.5)
        with pytest.raises(DownloadBrokenError, match="deadline"):
            fetcher.fetch(server.url("/x.jpg"))
        stalls = _stalls_over(server)
        assert stalls and all(stalls), stalls  # every attempt hung up before the stall ended


class _Clock:
    """A clock that moves only when the fetcher sleeps (and by ``step`` per reading)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


def test_retries_and_their_backoff_stay_within_the_deadline() -> None:
    clock = _Clock()
    with HostileServer(lambda path: Behaviour("status", b"busy", status=503)) as server:
        fetcher = HttpImageFetcher([server.host], timeout=5, retries=50, max_seconds=3.0,
                                   clock=clock, sleep=clock.sleep)
        with pytest.raises(DownloadBrokenError):
            fetcher.fetch(server.url("/x.jpg"))
    assert clock.slept and sum(clock.slept) <= 3.0 + 1e-9, clock.slept
    assert len(server.requests) == len(clock.slept) + 1 < 51  # the deadline ended it


def test_no_attempt_starts_once_the_deadline_has_passed() -> None:
    clock = _Clock(step=10.0)  # every reading is 10 s later: the deadline passes at once
    with HostileServer(lambda path: Behaviour("ok", _jpeg((0, 0, 0)))) as server:
        fetcher = HttpImageFetcher([server.host], timeout=5, max_seconds=5.0,
                                   clock=clock, sleep=clock.sleep)
        with pytest.raises(DownloadBrokenError, match="deadline"):
            fetcher.fetch(server.url("/x.jpg"))
        assert server.requests == []


@pytest.mark.parametrize("length", ["9" * 5000, "99999999999999999999", "-1", "1e9", "12, 13"])
def test_a_content_length_that_is_no_plain_number_is_no_crash(length: str) -> None:
    body = _jpeg((9, 9, 9))
    with HostileServer(lambda path: Behaviour("ok", body, content_length=length)) as server:
        fetcher = HttpImageFetcher([server.host], timeout=5, retries=0, max_bytes=100_000)
        try:
            assert fetcher.fetch(server.url("/x.jpg")) == body
        except FetchError as exc:
            _one_line(str(exc))


@pytest.mark.parametrize("retry_after", ["9" * 5000, "99999999999999999999", "2", "soon"])
def test_retry_after_is_honoured_within_the_deadline_only(retry_after: str) -> None:
    clock = _Clock()
    with HostileServer(lambda path: Behaviour(
            "status", b"slow down", "text/plain", status=429,
            headers=(("Retry-After", retry_after),))) as server:
        fetcher = HttpImageFetcher([server.host], timeout=5, retries=3, max_seconds=10.0,
                                   clock=clock, sleep=clock.sleep)
        with pytest.raises(DownloadBrokenError, match="HTTP 429"):
            fetcher.fetch(server.url("/x.jpg"))
    assert sum(clock.slept) <= 10.0
    if retry_after == "2":
        assert clock.slept and min(clock.slept) >= 2.0, clock.slept


def test_add_ids_gives_up_a_stalled_thumbnail_at_the_shortened_deadline(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = [f"good000000{n}" for n in range(1, 4)]
    stalled = "stall000001"

    def route(path: str) -> Behaviour:
        video_id = path.split("/")[2] if path.startswith("/vi/") else ""
        if video_id == stalled:
            return Behaviour("stall")
        return Behaviour("ok", _jpeg((int(video_id[-1]) * 40, 90, 160)))

    monkeypatch.setattr("indexer.images.fetch.DEFAULT_MAX_SECONDS", 0.5)
    with HostileServer(route, stall=5.0) as server:
        monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", server.url("/vi"))
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", server.host)
        with build_service(Settings.from_env(), embedder=TinyEmbedder()) as service:
            summary = add_video_ids(service, [stalled, *good], details=False)
        stalls = _stalls_over(server, lambda path: stalled in path)
    assert summary.run.new == len(good)
    assert [f.video_id for f in summary.run.failed] == [stalled]
    assert "deadline" in summary.run.failed[0].reason
    assert stalls and all(stalls), stalls


@pytest.mark.parametrize("name", ["THUMBSEARCH_THUMBNAIL_BASE", "THUMBSEARCH_YOUTUBE_ENDPOINT"])
@pytest.mark.parametrize("url", ["http://[::1", "https://i.ytimg.com:99999/vi",
                                 "https://i.ytimg.com:x/vi"])
def test_a_malformed_url_setting_is_one_line_exit_1(name: str, url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, url)
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], result.output


@pytest.mark.slow
def test_the_add_ids_command_survives_the_malformed_redirect_and_so_does_its_rerun(
        isolated_env: Path, tmp_path: Path) -> None:
    """The reported case, through the console script and the real model."""
    good = ["good0000001", "good0000002"]
    bad = {"bad00000001": "http://[::1"}
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*bad, *good]) + "\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("thumbsearch")
    with _Pair(_pipeline_route(bad)) as pair:
        env = {**os.environ, "THUMBSEARCH_THUMBNAIL_BASE": pair.server.url("/vi"),
               "THUMBSEARCH_ALLOWED_HOSTS": pair.server.host}
        for new, known in ((2, 0), (0, 2)):
            done = subprocess.run([str(exe), "add-ids", str(ids), "--no-details"],
                                  capture_output=True, text=True, timeout=600, check=False,
                                  env=env)
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            assert done.stdout.startswith(f"ids 3 (0 invalid skipped): new videos {new}, "
                                          f"already known {known}, gone 0 "), done.stdout
            assert "failed 1," in done.stdout
            assert ("  failed bad00000001: redirect from " in done.stdout
                    and "to a malformed URL 'http://[::1': Invalid IPv6 URL" in done.stdout)
