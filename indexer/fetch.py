"""Image downloads over HTTP: allowed hosts only, bounded size, retries, timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from indexer.bounds import quote
from indexer.errors import (
    DownloadBrokenError,
    FetchError,
    HostNotAllowedError,
    ThumbnailMissingError,
)

__all__ = ["HttpImageFetcher", "ImageFetcher", "host_allowed"]

MAX_REDIRECTS = 3
# A whole download (all attempts) may take this long: a slow drip cannot hold a worker forever.
DEFAULT_MAX_SECONDS = 60.0


class ImageFetcher(Protocol):
    """Downloads the bytes of one image URL."""

    def fetch(self, url: str) -> bytes:
        """The body of a 200 answer; raises FetchError otherwise."""
        ...


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """True when the URL is http(s) and its host (or host:port) is in ``allowed``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    allowed_set = {a.lower() for a in allowed}
    return with_port in allowed_set or (parts.port is None and host in allowed_set)


class HttpImageFetcher:
    """ImageFetcher over a pooled requests session with retries on 5xx and 429."""

    def __init__(self, allowed_hosts: Iterable[str], timeout: float = 20.0,
                 max_bytes: int = 10 * 1024 * 1024, retries: int = 3, pool_size: int = 16,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retries = retries
        self.max_seconds = max_seconds
        self.session = requests.Session()
        retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                      backoff_factor=0.3, backoff_jitter=0.2,
                      status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=("GET",), raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size,
                              pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "thumbsearch/0.1"

    def check(self, url: str) -> None:
        """Raise HostNotAllowedError unless images may come from this URL."""
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise HostNotAllowedError(f"refusing to fetch {quote(url)}: only http(s) URLs are "
                                      "allowed")
        if not host_allowed(url, self.allowed_hosts):
            host = urlsplit(url).netloc
            raise HostNotAllowedError(
                f"refusing to fetch from {host}: not in THUMBSEARCH_ALLOWED_HOSTS "
                f"({', '.join(self.allowed_hosts)})")

    def fetch(self, url: str) -> bytes:
        """Download one image; a broken download (5xx, reset, cut-off body) is tried again.

        urllib3 retries connections and statuses; a body that breaks off half-way is
        only seen here, so the whole request is repeated, within ``max_seconds``.
        """
        deadline = time.monotonic() + self.max_seconds
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, deadline)
            except DownloadBrokenError:
                attempt += 1
                if attempt > self.retries or time.monotonic() >= deadline:
                    raise
                time.sleep(min(0.2 * 2 ** attempt, max(0.0, deadline - time.monotonic())))

    def _fetch_once(self, url: str, deadline: float) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            try:
                response = self.session.get(url, timeout=self.timeout, stream=True,
                                            allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise DownloadBrokenError(
                    f"cannot download {url}: {type(exc).__name__}") from exc
            except requests.RequestException as exc:
                raise FetchError(f"cannot download {url}: {type(exc).__name__}") from exc
            with response:
                if response.is_redirect and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code == 404:
                    raise ThumbnailMissingError(f"no image at {url} (404)")
                if response.status_code >= 500 or response.status_code == 429:
                    raise DownloadBrokenError(
                        f"cannot download {url}: HTTP {response.status_code}")
                if response.status_code != 200:
                    raise FetchError(f"cannot download {url}: HTTP {response.status_code}")
                return self._read_body(url, response, deadline)
        raise FetchError(f"cannot download {url}: more than {MAX_REDIRECTS} redirects")

    def _read_body(self, url: str, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"image at {url} is {int(declared)} bytes, over the "
                             f"{self.max_bytes} byte limit")
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                # read1: whatever one socket read gives, so the deadline is checked often.
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_bytes:
                    raise FetchError(f"image at {url} is over the {self.max_bytes} byte limit")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise FetchError(f"download of {url} took over {self.max_seconds:g}s "
                                     "(a slow drip): skipped")
        except (requests.RequestException, Urllib3Error, OSError) as exc:
            raise DownloadBrokenError(
                f"download of {url} broke off: {type(exc).__name__}") from exc
        if declared and declared.isdigit() and total < int(declared):
            raise DownloadBrokenError(f"download of {url} broke off: {total} of "
                                      f"{declared} bytes")
        return b"".join(chunks)
