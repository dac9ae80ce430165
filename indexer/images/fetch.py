"""Image downloads over HTTP: allowed hosts only, bounded size, retries, one deadline."""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3 import Timeout
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import parse_url

from indexer.bounds import quote
from indexer.errors import (
    BadUrlError,
    DownloadBrokenError,
    FetchError,
    HostNotAllowedError,
    ThumbnailMissingError,
)
from indexer.urls import checked_url, host_allowed, redirect_target, target_allowed

__all__ = ["DEFAULT_MAX_SECONDS", "DEFAULT_RETRIES", "HttpImageFetcher", "ImageFetcher",
           "host_allowed"]

MAX_REDIRECTS = 3
# A whole download (all attempts) may take this long: a stalled or dripping host cannot hold
# a worker longer. Read when a fetcher is made, so a test can shorten it.
DEFAULT_MAX_SECONDS = 60.0
# Times a broken download (5xx, 429, reset, timeout, cut-off body) is tried again.
DEFAULT_RETRIES = 6
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_BACKOFF = 5.0
_MAX_RETRY_AFTER = 30.0


class ImageFetcher(Protocol):
    """Downloads the bytes of one image URL."""

    def fetch(self, url: str) -> bytes:
        """The body of a 200 answer; raises FetchError otherwise."""
        ...


class _RetryLater(DownloadBrokenError):
    """A 429 or 503 whose Retry-After asks for a pause before the next attempt."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def _header_number(text: str | None, limit: int) -> int | None:
    """A header's whole number when it is plain digits, capped at ``limit``; else None."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    # Far more digits than any real length: no need to parse all of them.
    return limit if len(text) > 18 else min(int(text), limit)


class HttpImageFetcher:
    """ImageFetcher over a pooled requests session.

    Redirects are followed here, not by requests: every hop's URL is checked (well-formed,
    http(s), an allowed host) before anything is sent to it. All retries happen in one
    loop, and each attempt's connect and read timeouts are cut to the time left, so a
    whole download (connecting, waiting for headers, the body, every retry and backoff)
    ends by its deadline.
    """

    def __init__(self, allowed_hosts: Iterable[str], timeout: float = 20.0,
                 max_bytes: int = 10 * 1024 * 1024, retries: int = DEFAULT_RETRIES,
                 pool_size: int = 16, max_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``timeout`` bounds each connect and each socket read; ``max_seconds`` (default
        DEFAULT_MAX_SECONDS) the whole download; ``clock`` and ``sleep`` are injectable."""
        self.allowed_hosts = tuple(allowed_hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retries = retries
        self.max_seconds = DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds
        self.clock = clock
        self.sleep = sleep
        self.session = requests.Session()
        # No retries or redirects inside urllib3: the loop here does both, within the deadline.
        adapter = HTTPAdapter(max_retries=0, pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "thumbsearch/0.1"
        self._environments: dict[tuple[str | None, str | None, int | None], Any] = {}

    def check(self, url: str) -> None:
        """Raise BadUrlError or HostNotAllowedError unless images may come from this URL."""
        parts = checked_url(url)
        if not target_allowed(parts.scheme, parts.hostname, parts.port, self.allowed_hosts):
            raise HostNotAllowedError(
                f"refusing to fetch from {quote(parts.netloc)}: not in "
                f"THUMBSEARCH_ALLOWED_HOSTS ({', '.join(self.allowed_hosts)})")

    def fetch(self, url: str) -> bytes:
        """Download one image; a broken download (5xx, reset, cut-off body) is tried again.

        Attempts stop after ``retries`` or when the next one could not start before
        the deadline, ``max_seconds`` after the first.
        """
        deadline = self.clock() + self.max_seconds
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, deadline)
            except DownloadBrokenError as exc:
                attempt += 1
                if attempt > self.retries:
                    raise
                pause = min(0.3 * 2 ** (attempt - 1), _MAX_BACKOFF) + 0.2 * random.random()
                if isinstance(exc, _RetryLater):
                    pause = max(pause, exc.seconds)
                if pause >= deadline - self.clock():
                    raise  # the next attempt could not finish in time
                self.sleep(pause)

    def _fetch_once(self, url: str, deadline: float) -> bytes:
        seen = [url]
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._request(url, deadline)
            except (BadUrlError, HostNotAllowedError) as exc:
                if len(seen) == 1:
                    raise
                raise type(exc)(f"redirect from {quote(seen[-2])}: {exc}") from None
            with response:
                status = response.status_code
                if status in _REDIRECT_STATUSES:
                    target = redirect_target(url, response.headers.get("Location"))
                    if target in seen:
                        raise FetchError(f"redirect loop: {quote(url)} leads back to "
                                         f"{quote(target)}")
                    seen.append(target)
                    url = target
                    continue
                if status == 404:
                    raise ThumbnailMissingError(f"no image at {quote(url)} (404)")
                if status >= 500 or status == 429:
                    message = f"cannot download {quote(url)}: HTTP {status}"
                    wait = _header_number(response.headers.get("Retry-After"),
                                          int(_MAX_RETRY_AFTER))
                    if wait is not None and status in (429, 503):
                        raise _RetryLater(message, float(wait))
                    raise DownloadBrokenError(message)
                if status != 200:
                    raise FetchError(f"cannot download {quote(url)}: HTTP {status}")
                return self._read_body(url, response, deadline)
        raise FetchError(f"cannot download {quote(seen[0])}: more than {MAX_REDIRECTS} "
                         "redirects")

    def _request(self, url: str, deadline: float) -> requests.Response:
        """Send one GET to a checked URL, with timeouts cut to the time left."""
        self.check(url)
        try:
            prepared = self.session.prepare_request(requests.Request("GET", url))
        except (requests.RequestException, ValueError, Urllib3Error) as exc:
            raise BadUrlError(f"malformed URL {quote(url)} ({type(exc).__name__})") from None
        self._check_sent(url, prepared.url or "")
        left = deadline - self.clock()
        if left <= 0:
            raise DownloadBrokenError(f"cannot download {quote(url)}: the "
                                      f"{self.max_seconds:g} s download deadline has passed")
        each = min(self.timeout, left)
        # HTTPAdapter takes urllib3's Timeout as it is (its stubs say float or tuple only):
        # ``total`` bounds connecting and waiting for the headers together.
        timeout: Any = Timeout(total=left, connect=each, read=each)
        try:
            env = self._environment(prepared.url or url)
            verify = True if env["verify"] is None else env["verify"]
            # The adapter, not session.send: that parses the Location of every redirect
            # answer (for ``response.next``) even when redirects are not followed, and a
            # malformed one raised a bare ValueError there.
            adapter = self.session.get_adapter(prepared.url or url)
            return adapter.send(prepared, stream=True, timeout=timeout, verify=verify,
                                cert=env["cert"], proxies=env["proxies"])
        except requests.Timeout as exc:
            if each < self.timeout:  # the deadline, not the socket timeout, ended the wait
                raise DownloadBrokenError(
                    f"no answer from {quote(url)} within the {self.max_seconds:g} s "
                    "download deadline") from exc
            raise DownloadBrokenError(f"cannot download {quote(url)}: no answer within "
                                      f"{self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            raise DownloadBrokenError(
                f"cannot download {quote(url)}: {type(exc).__name__}") from exc
        except ValueError as exc:  # requests' InvalidURL, http.client's, urllib3's parse errors
            raise BadUrlError(f"malformed URL {quote(url)} ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise FetchError(f"cannot download {quote(url)}: {type(exc).__name__}") from exc
        except (Urllib3Error, http.client.HTTPException, OSError) as exc:
            raise DownloadBrokenError(
                f"cannot download {quote(url)}: {type(exc).__name__}") from exc

    def _environment(self, url: str) -> Any:
        """What session.request would add for ``url``'s origin: proxies and the CA bundle
        from the environment, read once per origin (reading them walks the whole
        environment, a large share of a thumbnail's CPU)."""
        parts = parse_url(url)
        origin = (parts.scheme, parts.host, parts.port)
        env: Any = self._environments.get(origin)
        if env is None:
            env = self.session.merge_environment_settings(url, {}, True, None, None)
            self._environments[origin] = env
        return env

    def _check_sent(self, url: str, sent: str) -> None:
        """The URL requests will send, as urllib3 reads it, must still be on an allowed host:
        two parsers must not disagree about where the request goes."""
        try:
            parts = parse_url(sent)
        except ValueError:
            raise BadUrlError(f"malformed URL {quote(url)}") from None
        if not target_allowed(parts.scheme or "", parts.host, parts.port, self.allowed_hosts):
            raise HostNotAllowedError(
                f"refusing to fetch {quote(url)}: it is sent to {quote(parts.host)}, not in "
                f"THUMBSEARCH_ALLOWED_HOSTS ({', '.join(self.allowed_hosts)})")

    def _read_body(self, url: str, response: requests.Response, deadline: float) -> bytes:
        declared = _header_number(response.headers.get("Content-Length"), self.max_bytes + 1)
        if declared is not None and declared > self.max_bytes:
            raise FetchError(f"image at {quote(url)} is over the {self.max_bytes} byte limit "
                             "(Content-Length)")
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                left = deadline - self.clock()
                if left <= 0:
                    raise FetchError(f"download of {quote(url)} took over "
                                     f"{self.max_seconds:g} s (a slow drip): skipped")
                self._cut_socket_timeout(response, min(self.timeout, left))
                # read1: whatever one socket read gives, so the deadline is checked often.
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_bytes:
                    raise FetchError(f"image at {quote(url)} is over the {self.max_bytes} "
                                     "byte limit")
                chunks.append(chunk)
        except (requests.RequestException, Urllib3Error, http.client.HTTPException,
                OSError, ValueError) as exc:  # ValueError: a read on a connection closed under it
            if self.clock() >= deadline:
                raise DownloadBrokenError(f"download of {quote(url)} took over "
                                          f"{self.max_seconds:g} s (a stall): skipped") from exc
            raise DownloadBrokenError(
                f"download of {quote(url)} broke off: {type(exc).__name__}") from exc
        if declared is not None and total < declared:
            raise DownloadBrokenError(f"download of {quote(url)} broke off: {total} of "
                                      f"{declared} bytes")
        return b"".join(chunks)

    @staticmethod
    def _cut_socket_timeout(response: requests.Response, seconds: float) -> None:
        """Bound the next socket read of the body by ``seconds`` (the time left)."""
        connection = getattr(response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(max(seconds, 0.001))
