"""`serve` answers requests concurrently: a slow thumbnail download holds only its own request.

A real uvicorn server on loopback (a thread, as `serve` runs it) over a small corpus (tiny
embedder); unknown video ids go to a thumbnail host on loopback that holds each download
until the test releases it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from indexer.ingest.local import add_paths
from indexer.service import build_service
from indexer.settings import Settings
from search.cli.serve import bind
from search.eval.samples import write_ytdlp_folder
from search.web import create_app
from search.web.app import web_service
from search.web.guard import host_names
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.live import live_app

UNKNOWN = "Zz9_unknown"  # a well-formed id the corpus does not hold
LOOKUPS = 8
HOLD_CAP = 60.0  # the host gives up holding after this (only if the server never answers)


@dataclass
class Corpus:
    """A home holding the sample corpus, its stored ids and a JPEG to serve."""

    home: Path
    video_ids: list[str]
    jpeg: bytes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("concurrent")
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(root / "home")})
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=1)
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        add_paths(service, [root / "thumbs"])
        stored = [s.video_id for s in samples if service.store.get_video(s.video_id)]
    assert len(stored) >= LOOKUPS
    return Corpus(root / "home", stored, samples[0].path.read_bytes())


@dataclass
class Host:
    """A thumbnail host that holds every download until ``release`` (or answers 404)."""

    jpeg: bytes
    missing: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0


@contextmanager
def _thumbnail_host(host: Host) -> Iterator[Host]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.arrived.set()
            if host.missing:
                self.send_error(404)
                return
            host.release.wait(HOLD_CAP)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(host.jpeg)))
                self.end_headers()
                self.wfile.write(host.jpeg)
            except OSError:
                pass  # the client gave up (its deadline)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        host.release.set()
        server.shutdown()
        server.server_close()


@contextmanager
def _serving(corpus: Corpus, host: Host, fetch_timeout: float) -> Iterator[str]:
    """The app as `serve` builds it, on a real uvicorn server on 127.0.0.1; its base URL."""
    settings = Settings.from_env({
        "THUMBSEARCH_HOME": str(corpus.home),
        "THUMBSEARCH_THUMBNAIL_BASE": f"http://127.0.0.1:{host.port}/vi",
        "THUMBSEARCH_ALLOWED_HOSTS": f"127.0.0.1:{host.port}",
        "THUMBSEARCH_WEB_FETCH_TIMEOUT": str(fetch_timeout)})
    # One stored-id lookup at a time, the tightest queue: a download that took a place in
    # it would hold every lookup behind it.
    with live_app(lambda port: create_app(
            lambda: web_service(settings, embedder=TinyEmbedder()),
            allowed_hosts=host_names("127.0.0.1", port), lookup_threads=1)) as port:
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            host.release.set()  # before the server waits for its held request


def _get(url: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body (empty for the page)."""
    try:
        with urllib.request.urlopen(url, timeout=2 * HOLD_CAP) as answer:
            data, status = answer.read(), answer.status
            kind = answer.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        data, status, kind = error.read(), error.code, error.headers.get("content-type", "")
    return status, json.loads(data) if kind.startswith("application/json") else {}


@dataclass
class Call:
    """One request made from a thread of its own."""

    url: str
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    done: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        def run() -> None:
            self.started = time.monotonic()
            try:
                self.status, self.body = _get(self.url)
            finally:
                self.done = time.monotonic()
                self.finished.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def test_lookups_and_stats_are_answered_while_a_download_is_held(corpus: Corpus) -> None:
    with _thumbnail_host(Host(corpus.jpeg)) as host, \
            _serving(corpus, host, fetch_timeout=HOLD_CAP) as base:
        assert _get(f"{base}/api/stats")[0] == 200  # the service is built
        held = Call(f"{base}/api/similar/{UNKNOWN}?k=3")
        held_thread = held.start()
        assert host.arrived.wait(HOLD_CAP), "the unknown id's download never started"
        hold_start = time.monotonic()
        calls = [Call(f"{base}/api/similar/{v}?k=5") for v in corpus.video_ids[:LOOKUPS]]
        calls += [Call(f"{base}/api/stats"), Call(f"{base}/api/videos?per_page=4"),
                  Call(f"{base}/")]
        threads = [c.start() for c in calls]
        for call in calls:
            call.finished.wait(2 * HOLD_CAP)
        answered_while_held = not held.finished.is_set() and not host.release.is_set()
        hold_seconds = time.monotonic() - hold_start
        host.release.set()
        held_thread.join(2 * HOLD_CAP)
        for thread in threads:
            thread.join(1)

    assert all(c.status == 200 for c in calls), [(c.url, c.status, c.body) for c in calls]
    assert all(c.done < held.done for c in calls), "a request waited for the held download"
    assert answered_while_held, "the other requests were answered only after the release"
    assert held.status == 200, held.body
    assert held.body["query"]["video_id"] == UNKNOWN and len(held.body["results"]) == 3
    slowest = max(c.done - c.started for c in calls)
    print(f"{len(calls)} requests answered during a {hold_seconds:.2f} s hold; the slowest "
          f"took {slowest / (held.done - held.started):.2f} of the held request's time")


@pytest.mark.parametrize("failure", ["deadline", "missing", "unreachable"])
def test_an_unknown_id_without_a_thumbnail_is_404(corpus: Corpus, failure: str) -> None:
    with _thumbnail_host(Host(corpus.jpeg, missing=failure == "missing")) as host:
        if failure == "unreachable":
            with bind("127.0.0.1", 0) as closed:  # a port nothing listens on any more
                host.port = closed.getsockname()[1]
        with _serving(corpus, host, fetch_timeout=0.5) as base:
            status, body = _get(f"{base}/api/similar/{UNKNOWN}")
            if failure == "deadline":
                assert host.arrived.is_set() and not host.release.is_set()
            stored = _get(f"{base}/api/similar/{corpus.video_ids[0]}?k=2")
    assert status == 404
    assert body == {"error": f"{UNKNOWN} is not in the corpus and no thumbnail could be "
                             "fetched"}
    assert stored[0] == 200 and len(stored[1]["results"]) == 2


def test_a_long_running_service_catches_up_aside(tmp_path: Path) -> None:
    """Rows stored by another run reach the server's index through a copy that is swapped
    in: what a search already holds is never changed under it."""
    from PIL import Image

    settings = Settings.from_env({"THUMBSEARCH_HOME": str(tmp_path / "home")})
    first, later = tmp_path / "first", tmp_path / "later"
    for folder, colours in ((first, range(0, 120, 40)), (later, range(130, 250, 40))):
        folder.mkdir()
        for value in colours:
            Image.new("RGB", (64, 36), (value, 255 - value, 90)).save(folder / f"{value}.jpg")
    with build_service(settings, embedder=TinyEmbedder()) as writer:
        writer.prepare_for_writing()
        add_paths(writer, [first])
    with build_service(settings, embedder=TinyEmbedder()) as server:
        index = server.require_corpus().index
        before = index._held
        size = before.size
        with build_service(settings, embedder=TinyEmbedder()) as writer:
            add_paths(writer, [later])
        assert server.require_corpus().index is index and index.size == size + 3
        assert index._held is not before and before.size == size  # the old state is whole
        assert before.base is None or index._held.base is before.base  # the snapshot shared
