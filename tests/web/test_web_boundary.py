"""The web API against hostile requests: Host headers, error shapes, huge numbers, server paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.service import Service, build_service
from indexer.settings import Settings
from search.eval.samples import SampleVideo
from search.web import create_app
from search.web.app import host_names
from search.web.errors import scrub_paths
from tests.fakes.embedder import TinyEmbedder
from tests.web.test_web_api import client, corpus, own_corpus, sqlite_corpus

__all__ = ["client", "corpus", "own_corpus", "sqlite_corpus"]

HUGE = "12122781561321141829632"


def _assert_error(answer: object, status: int) -> str:
    """The answer is exactly ``{"error": "<one line>"}`` with ``status``; returns the line."""
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    assert answer.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str) and message and "\n" not in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(("method", "url", "status"), [
    ("get", "/no/such/route", 404),
    ("get", "/api/nothing", 404),
    ("delete", "/api/stats", 405),
    ("post", "/api/videos", 405),
    ("put", "/api/similar", 405),
    ("get", f"/api/videos?page={HUGE}", 422),
    ("get", f"/api/videos?page=-{HUGE}", 422),
    ("get", f"/api/videos?per_page={HUGE}", 422),
    ("get", "/api/videos?page=1e3", 422),
    ("get", "/api/videos?query=" + "q" * 5000, 422),
    ("get", f"/api/similar/dQw4w9WgXcQ?k={HUGE}", 422),
    ("get", "/api/similar/dQw4w9WgXcQ?k=-1", 422),
    ("get", "/api/similar/" + "x" * 5000, 422),
    ("get", "/api/duplicates?threshold=nan", 422),
    ("get", "/api/duplicates?threshold=1e999", 422),
    ("get", "/api/duplicates?threshold=-inf", 422),
    ("get", "/api/duplicates?across_channels=maybe", 422),
    ("get", "/thumbs/" + "v" * 5000, 422),
    ("get", "/static/nothing.js", 404),
])
def test_every_error_is_one_json_line(client: TestClient, method: str, url: str,
                                      status: int) -> None:
    _assert_error(client.request(method.upper(), url), status)


def test_method_not_allowed_keeps_its_allow_header(client: TestClient) -> None:
    answer = client.delete("/api/stats")
    _assert_error(answer, 405)
    assert "GET" in answer.headers["allow"]


def test_a_body_that_cannot_be_parsed_is_400(client: TestClient) -> None:
    answer = client.post("/api/similar", content=b"--x\r\nbroken",
                         headers={"content-type": "multipart/form-data"})
    _assert_error(answer, 400)


def test_upload_checks_content_length_before_reading(client: TestClient,
                                                     corpus: tuple[Service, list[SampleVideo]]
                                                     ) -> None:
    service, _ = corpus
    declared = service.settings.max_image_bytes * 100
    answer = client.post("/api/similar", content=b"x" * 10,
                         headers={"content-type": "multipart/form-data; boundary=x",
                                  "content-length": str(declared)})
    _assert_error(answer, 413)


def test_stats_show_no_server_path(client: TestClient,
                                   corpus: tuple[Service, list[SampleVideo]]) -> None:
    service, _ = corpus
    home = service.settings.home
    answer = client.get("/api/stats")
    assert answer.status_code == 200
    for form in {str(home), str(home.resolve()), str(home.parent)}:
        assert form not in answer.text
    data = answer.json()
    assert data["index"]["snapshot"] == "index/tiny-test.faiss"
    assert data["home"] == home.name


def test_errors_show_no_server_path(own_corpus: tuple[Service, list[SampleVideo]],
                                    settings: Settings) -> None:
    stored, samples = own_corpus
    meta = stored.settings.index_dir / "tiny-test.json"
    assert meta.exists()
    meta.write_text("{ not json")
    with build_service(settings, embedder=TinyEmbedder()) as fresh:
        app = TestClient(create_app(lambda: fresh), raise_server_exceptions=False)
        for url in ("/api/stats", f"/api/similar/{samples[0].video_id}"):
            message = _assert_error(app.get(url), 500)
            assert "index/tiny-test.json" in message
            assert str(Path(settings.home).parent) not in message


def test_an_unexpected_exception_shows_only_its_kind(settings: Settings) -> None:
    def broken() -> Service:
        raise RuntimeError(f"secret detail at {settings.home}")

    app = TestClient(create_app(broken), raise_server_exceptions=False)
    message = _assert_error(app.get("/api/stats"), 500)
    assert "secret" not in message and str(settings.home) not in message


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.:8000",
    "127.0.0.1:8001", "localhost:9", "[::2]:8000", "", "0.0.0.0:8000"])
def test_foreign_host_headers_are_refused(corpus: tuple[Service, list[SampleVideo]],
                                          host: str) -> None:
    service, _ = corpus
    app = TestClient(create_app(lambda: service,
                                allowed_hosts=host_names("127.0.0.1", 8000)))
    for url in ("/api/stats", "/", "/no/such/route", "/openapi.json"):
        message = _assert_error(app.get(url, headers={"host": host}), 400)
        assert "host" in message.lower()


@pytest.mark.parametrize("host", [
    "127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000", "127.0.0.1",
    "localhost"])
def test_loopback_host_headers_are_answered(corpus: tuple[Service, list[SampleVideo]],
                                            host: str) -> None:
    service, _ = corpus
    app = TestClient(create_app(lambda: service,
                                allowed_hosts=host_names("127.0.0.1", 8000)))
    assert app.get("/api/stats", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(("text", "expected"), [
    ("index metadata /srv/ts/home/index/m.json is unreadable",
     "index metadata index/m.json is unreadable"),
    ("cannot open database sqlite:////srv/ts/home/thumbsearch.sqlite3: locked",
     "cannot open database sqlite:///thumbsearch.sqlite3: locked"),
    ("cannot open database sqlite:////var/lib/other.db: locked",
     "cannot open database sqlite:///other.db: locked"),
    ("cannot write the thumbnail cache under /srv/ts/home: read-only",
     "cannot write the thumbnail cache under .: read-only"),
    ("model file '/root/.cache/x/model.tflite' is broken", "model file 'model.tflite' is broken"),
    ("fetch https://i.ytimg.com/vi/abc/mqdefault.jpg failed",
     "fetch https://i.ytimg.com/vi/abc/mqdefault.jpg failed"),
    ("ratio 1/2 and/or more", "ratio 1/2 and/or more"),
])
def test_paths_in_messages_are_cut(text: str, expected: str) -> None:
    assert scrub_paths(text, Path("/srv/ts/home")) == expected
