"""Image downloads over HTTP: allowed hosts only, bounded size, retries, timeouts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from indexer.errors import FetchError, HostNotAllowedError, ThumbnailMissingError

__all__ = ["HttpImageFetcher", "ImageFetcher", "host_allowed"]

MAX_REDIRECTS = 3


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
                 max_bytes: int = 10 * 1024 * 1024, retries: int = 3, pool_size: int = 16) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
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
            raise HostNotAllowedError(f"refusing to fetch {url!r}: only http(s) URLs are allowed")
        if not host_allowed(url, self.allowed_hosts):
            host = urlsplit(url).netloc
            raise HostNotAllowedError(
                f"refusing to fetch from {host}: not in THUMBSEARCH_ALLOWED_HOSTS "
                f"({', '.join(self.allowed_hosts)})")

    def fetch(self, url: str) -> bytes:
        """Download one image; redirects are followed only to allowed hosts."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            try:
                response = self.session.get(url, timeout=self.timeout, stream=True,
                                            allow_redirects=False)
            except requests.RequestException as exc:
                raise FetchError(f"cannot download {url}: {type(exc).__name__}") from exc
            with response:
                if response.is_redirect and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code == 404:
                    raise ThumbnailMissingError(f"no image at {url} (404)")
                if response.status_code != 200:
                    raise FetchError(f"cannot download {url}: HTTP {response.status_code}")
                return self._read_body(url, response)
        raise FetchError(f"cannot download {url}: more than {MAX_REDIRECTS} redirects")

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"image at {url} is {int(declared)} bytes, over the "
                             f"{self.max_bytes} byte limit")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                total += len(chunk)
                if total > self.max_bytes:
                    raise FetchError(f"image at {url} is over the {self.max_bytes} byte limit")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FetchError(f"download of {url} broke off: {type(exc).__name__}") from exc
        return b"".join(chunks)
