"""Image downloads and decoding against a real HTTP server on loopback."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from indexer.errors import (
    FetchError,
    HostNotAllowedError,
    ImageDecodeError,
    ImagePathError,
    ThumbnailMissingError,
)
from indexer.images.decode import MAX_PIXELS, decode_image, read_image_file
from indexer.images.fetch import HttpImageFetcher


def _jpeg(size: tuple[int, int] = (32, 18), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "image/jpeg",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        hits = type(self).hits
        hits[self.path] = hits.get(self.path, 0) + 1
        if self.path == "/ok.jpg":
            self._send(200, _jpeg())
        elif self.path == "/missing.jpg":
            self._send(404, _jpeg((120, 90), "gray"))
        elif self.path == "/flaky.jpg":
            if hits[self.path] < 3:
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, _jpeg())
        elif self.path == "/big.jpg":
            self._send(200, b"\xff" * 300_000)
        elif self.path == "/html.jpg":
            self._send(200, b"<!DOCTYPE html><html><body>hi</body></html>")
        elif self.path == "/redirect-out":
            self._send(302, b"", headers={"Location": "http://evil.example/x.jpg"})
        elif self.path == "/redirect-in":
            self._send(302, b"", headers={"Location": "/ok.jpg"})
        elif self.path == "/forbidden":
            self._send(403, b"no", "text/plain")
        else:
            self._send(404, b"")


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fetcher(host: str) -> HttpImageFetcher:
    return HttpImageFetcher([host], timeout=5, max_bytes=200_000, retries=3)


def test_fetch_ok_and_decode(server: str) -> None:
    image = decode_image(_fetcher(server).fetch(f"http://{server}/ok.jpg"))
    assert image.size == (32, 18)
    assert image.mode == "RGB"


def test_404_placeholder_is_missing_not_an_image(server: str) -> None:
    with pytest.raises(ThumbnailMissingError, match="404"):
        _fetcher(server).fetch(f"http://{server}/missing.jpg")


def test_5xx_is_retried(server: str) -> None:
    assert _fetcher(server).fetch(f"http://{server}/flaky.jpg")
    assert _Handler.hits["/flaky.jpg"] == 3


def test_other_statuses_fail_clearly(server: str) -> None:
    with pytest.raises(FetchError, match="HTTP 403"):
        _fetcher(server).fetch(f"http://{server}/forbidden")


def test_body_over_the_limit_is_refused(server: str) -> None:
    with pytest.raises(FetchError, match="byte limit"):
        _fetcher(server).fetch(f"http://{server}/big.jpg")


def test_html_served_as_jpeg_is_named(server: str) -> None:
    data = _fetcher(server).fetch(f"http://{server}/html.jpg")
    with pytest.raises(ImageDecodeError, match="HTML"):
        decode_image(data)


def test_redirects_stay_on_allowed_hosts(server: str) -> None:
    fetcher = _fetcher(server)
    assert decode_image(fetcher.fetch(f"http://{server}/redirect-in")).size == (32, 18)
    with pytest.raises(HostNotAllowedError, match=r"evil\.example"):
        fetcher.fetch(f"http://{server}/redirect-out")


@pytest.mark.parametrize("url", ["http://example.com/a.jpg", "file:///etc/passwd",
                                 "ftp://127.0.0.1/a.jpg"])
def test_disallowed_urls_are_refused_before_any_request(server: str, url: str) -> None:
    with pytest.raises(HostNotAllowedError):
        _fetcher(server).fetch(url)
    assert _Handler.hits == {}


def test_unreachable_host_is_a_fetch_error() -> None:
    fetcher = HttpImageFetcher(["127.0.0.1:9"], timeout=2, retries=0)
    with pytest.raises(FetchError, match="cannot download"):
        fetcher.fetch("http://127.0.0.1:9/x.jpg")


def test_decode_handles_modes_and_refuses_garbage() -> None:
    out = io.BytesIO()
    Image.new("CMYK", (10, 10)).save(out, "JPEG")
    assert decode_image(out.getvalue()).mode == "RGB"
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, "PNG")
    assert decode_image(out.getvalue()).mode == "RGB"
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageDecodeError):
        decode_image(_jpeg()[:100])


def test_decompression_bomb_is_refused() -> None:
    out = io.BytesIO()
    side = int(MAX_PIXELS**0.5) + 10
    Image.new("1", (side, side)).save(out, "PNG")
    with pytest.raises(ImageDecodeError, match="pixel"):
        decode_image(out.getvalue())


def test_read_image_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ImagePathError, match="no such file"):
        read_image_file(tmp_path / "nope.jpg")
    with pytest.raises(ImagePathError, match="directory"):
        read_image_file(tmp_path)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageDecodeError, match="not an image"):
        read_image_file(bad)
