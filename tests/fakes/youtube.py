"""A fake YouTube Data API v3 and thumbnail host, served over real HTTP on 127.0.0.1.

Two ``ThreadingHTTPServer``s run in daemon threads on ephemeral ports: one
answers ``GET /youtube/v3/search`` and ``GET /youtube/v3/videos`` as
google-api-python-client calls them, the other serves ``/vi/<id>/<name>.jpg``
as i.ytimg.com does (a second host, as in production). Response bodies follow
the schemas of the discovery document google-api-python-client ships.

Behaviour copied from the real service:
- search.list snippets are HTML-escaped (``&#39;``, ``&amp;``); videos.list
  snippets are not.
- search.list: ``part`` is required (snippet or id); ``maxResults`` 0..50,
  default 5; opaque page tokens (YouTube's own encoding: a tiny protobuf
  holding the offset, e.g. ``CAUQAA``), an unknown token is 400
  invalidPageToken; at most ``max_search_results`` (500) results reachable
  per query while ``pageInfo.totalResults`` reports every match; without
  ``type`` every kind is allowed, with a ``type`` that excludes video nothing
  is found (the catalogue holds videos only). ``channelId``,
  ``publishedAfter``/``publishedBefore`` and ``order`` (relevance, date,
  viewCount, title) are honoured.
- Which videos a query finds: when ``q`` is exactly a key of ``searches``,
  those ids in that order (deleted videos included: the search index lags
  deletions); otherwise every non-deleted video whose title words and tags
  contain all the words of ``q``, case-insensitively; nothing when no word
  matches. A missing ``q`` finds every non-deleted video.
- videos.list: ``id`` takes up to 50 ids (comma-separated or repeated);
  unknown and deleted ids are simply absent (200). Parts rendered: snippet,
  contentDetails, statistics, status (id always); other valid parts are
  accepted and left out.
- Key: missing -> 403 forbidden ("The request is missing a valid API key.");
  wrong -> 400 badRequest with ``details[0].reason == "API_KEY_INVALID"``.
  Neither is charged (there is no project to charge).
- Quota: every call with a valid key is charged, invalid ones too.
  search.list has its own bucket of ``search_quota`` calls; other methods
  share ``units_quota`` units (videos.list costs 1). A spent bucket answers
  403 quotaExceeded (domain youtube.quota).
- Videos uploaded between runs (``publish``) join the catalogue at once and
  come first in the results of the searches they are published to (relevance
  favours fresh uploads), ahead of what those searches found before; found by
  the words of their title and tags as any other video.
- Thumbnails: default 120x90, mqdefault 320x180, hqdefault 480x360,
  sddefault 640x480 (letterboxed 4:3 names), maxresdefault 1280x720 (only
  when ``has_maxres``). Anything missing is a 404 whose body is a 120x90 grey
  JPEG with ``Content-Type: image/jpeg``. HEAD works.

The servers speak HTTP/1.0, so each connection closes after its response:
no client socket is left open when a test ends (pytest runs with warnings as
errors, and an unclosed socket is a ResourceWarning).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from search.eval import samples

__all__ = [
    "API_KEY_INVALID_BODY",
    "THUMBNAIL_NAMES",
    "FakeVideo",
    "FakeYouTube",
    "RecordedRequest",
    "google_error",
    "photo_catalogue",
    "placeholder_jpeg",
]

THUMBNAIL_NAMES = tuple(samples.THUMBNAIL_SIZES)

# ThumbnailDetails key of each i.ytimg.com file name.
_DETAIL_KEYS = {
    "default": "default",
    "mqdefault": "medium",
    "hqdefault": "high",
    "sddefault": "standard",
    "maxresdefault": "maxres",
}
_SEARCH_PARTS = frozenset({"id", "snippet"})
_VIDEO_PARTS = frozenset(
    {
        "contentDetails",
        "fileDetails",
        "id",
        "liveStreamingDetails",
        "localizations",
        "paidProductPlacementDetails",
        "player",
        "processingDetails",
        "recordingDetails",
        "snippet",
        "statistics",
        "status",
        "suggestions",
        "topicDetails",
    }
)
_MAX_IDS = 50
_PLACEHOLDER_GREY = (204, 204, 204)

API_KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_KEY_MESSAGE = "The request is missing a valid API key."
QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)

#: The body YouTube answers (400) to a request with a wrong key, verbatim.
API_KEY_INVALID_BODY: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": API_KEY_INVALID_MESSAGE,
        "errors": [
            {"message": API_KEY_INVALID_MESSAGE, "domain": "global", "reason": "badRequest"}
        ],
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "youtube.googleapis.com"},
            }
        ],
    }
}

# reason -> (domain, message) of Google's error bodies, for errors made up by inject().
_REASONS: dict[str, tuple[str, str]] = {
    "quotaExceeded": ("youtube.quota", QUOTA_MESSAGE),
    "rateLimitExceeded": (
        "youtube.quota",
        "Too many requests have been sent within a given time span.",
    ),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded"),
    "backendError": ("global", "Backend Error"),
    "internalError": ("global", "Internal error encountered."),
    "badRequest": ("global", "Bad Request"),
    "forbidden": ("global", "Forbidden"),
    "notFound": ("global", "Not Found"),
}
_DEFAULT_REASON = {
    400: "badRequest",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "internalError",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(
    code: int,
    reason: str | None = None,
    message: str | None = None,
    *,
    domain: str | None = None,
    location: str | None = None,
) -> dict[str, Any]:
    """A Google API error body: ``{"error": {code, message, errors: [...], status}}``."""
    reason = reason or _DEFAULT_REASON.get(code, "backendError")
    known_domain, known_message = _REASONS.get(reason, ("global", reason))
    message = message or known_message
    item: dict[str, Any] = {"message": message, "domain": domain or known_domain, "reason": reason}
    if location:
        item["location"] = location
        item["locationType"] = "parameter"
    error: dict[str, Any] = {"code": code, "message": message, "errors": [item]}
    # YouTube's quota errors carry no status; the other errors do.
    if item["domain"] != "youtube.quota":
        error["status"] = _STATUS_NAMES.get(code, "UNKNOWN")
    return {"error": error}


def _html_escape(text: str) -> str:
    """Escape as YouTube's search snippets do (apostrophe as &#39;, not &#x27;)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _etag(payload: object) -> str:
    """A stable 27-character etag in YouTube's style, derived from the content."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:27]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _page_token(offset: int, backwards: bool) -> str:
    """YouTube's token: protobuf {1: offset, 2: direction}, base64url without padding."""
    raw = b"\x08" + _varint(offset) + b"\x10" + (b"\x01" if backwards else b"\x00")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_page_token(token: str) -> tuple[int, bool] | None:
    """(offset, backwards) of a token this fake issued, None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) < 4 or raw[0] != 0x08:
        return None
    offset, shift, pos = 0, 0, 1
    while pos < len(raw) and shift < 63:
        byte = raw[pos]
        offset |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
        if not byte & 0x80:
            break
    else:
        return None
    if raw[pos:] not in (b"\x10\x00", b"\x10\x01") or _page_token(offset, raw[-1] == 1) != token:
        return None
    return offset, raw[-1] == 1


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@functools.cache
def placeholder_jpeg() -> bytes:
    """The 120x90 grey JPEG i.ytimg.com sends with a 404."""
    return _jpeg(Image.new("RGB", (120, 90), _PLACEHOLDER_GREY))


def _solid_frame(video_id: str) -> Image.Image:
    """A plain 16:9 frame coloured from the id, for videos built without a frame."""
    digest = hashlib.sha256(video_id.encode()).digest()
    return Image.new("RGB", (640, 360), (digest[0], digest[1], digest[2]))


_CORRUPT_BODY = (
    b"<!DOCTYPE html><html><head><title>Error</title></head>"
    b"<body>Something went wrong.</body></html>"
)


@dataclass(frozen=True)
class FakeVideo:
    """One video of the fake catalogue; its thumbnails are rendered from ``frame``."""

    video_id: str
    title: str
    description: str = ""
    channel_id: str = "UCfakefakefakefakefake00"
    channel_title: str = "Fake Channel"
    published_at: str = "2024-01-01T00:00:00Z"
    duration: str = "PT4M13S"
    view_count: int = 0
    like_count: int = 0
    comment_count: int = 0
    tags: tuple[str, ...] = ()
    category_id: str = "22"
    default_language: str | None = "en"
    frame: Image.Image | None = field(default=None, repr=False, compare=False)
    has_maxres: bool = False
    has_standard: bool = True
    thumbnail_missing: bool = False
    corrupt_thumbnail: bool = False
    deleted: bool = False
    # JPEGs by thumbnail name, rendered on first request; shared by every
    # server over the same (cached) catalogue, so each is encoded only once.
    _jpegs: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def has_thumbnail(self, name: str) -> bool:
        """Whether the thumbnail host answers 200 for this size name."""
        if name not in samples.THUMBNAIL_SIZES or self.thumbnail_missing or self.deleted:
            return False
        if name == "maxresdefault":
            return self.has_maxres
        return self.has_standard if name == "sddefault" else True

    def thumbnail_jpeg(self, name: str) -> bytes:
        """The JPEG of one thumbnail size, rendered from the frame as i.ytimg.com would."""
        cached = self._jpegs.get(name)
        if cached is None:
            frame = self.frame if self.frame is not None else _solid_frame(self.video_id)
            cached = _jpeg(samples.youtube_thumbnail(frame, name))
            self._jpegs[name] = cached
        return cached


@dataclass(frozen=True)
class RecordedRequest:
    """One request either server received."""

    server: str  # "api" or "thumbnails"
    method: str
    path: str
    params: dict[str, list[str]]
    status: int

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class _Injection:
    path_prefix: str
    status: int | None
    reason: str | None
    message: str | None
    remaining: int | None
    delay: float | None


_STORM_KINDS = ("500 backendError", "503 backendError", "429 rateLimitExceeded", "timeout")


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()


def _json_reply(status: int, payload: Mapping[str, Any]) -> _Reply:
    return _Reply(status, json.dumps(payload, indent=2).encode("utf-8"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: Callable[[str, str, dict[str, list[str]]], _Reply],
                 keep_alive: bool = False) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler if keep_alive else _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeYouTube/1.0"

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        if method == "POST":
            # googleapiclient turns a GET whose URL is over 2048 characters
            # into a POST with the query as a form body.
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            for key, values in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
            override = self.headers.get("X-HTTP-Method-Override", "").upper()
            method = "GET" if override == "GET" else "POST"
        reply = self.server.app(method, parts.path, params)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer to

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read fake.requests instead of stderr


class _KeepAliveHandler(_Handler):
    """HTTP/1.1: connections stay open between requests, as on the real hosts."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would
    # wait for the client's delayed ACK (tens of milliseconds) on a kept-alive connection.
    disable_nagle_algorithm = True


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _split_multi(params: Mapping[str, list[str]], name: str) -> list[str]:
    """Values of a repeated parameter, sent repeated or comma-separated."""
    return [item.strip() for value in params.get(name, []) for item in value.split(",") if item]


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


class FakeYouTube:
    """The YouTube Data API (search.list, videos.list) and i.ytimg.com, on loopback ports."""

    def __init__(
        self,
        videos: Iterable[FakeVideo],
        searches: Mapping[str, Sequence[str]] | None = None,
        api_key: str = "test-key",
        search_quota: int = 100,
        units_quota: int = 10_000,
        *,
        max_search_results: int = 500,
        region_code: str = "US",
        keep_alive: bool = False,
    ) -> None:
        self._videos: dict[str, FakeVideo] = {}
        for video in videos:
            if video.video_id in self._videos:
                raise ValueError(f"duplicate video id {video.video_id!r}")
            self._videos[video.video_id] = video
        self.searches: dict[str, list[str]] = {q: list(ids) for q, ids in (searches or {}).items()}
        self.api_key = api_key
        self.search_quota = search_quota
        self.units_quota = units_quota
        self.max_search_results = max_search_results
        self.region_code = region_code
        self.keep_alive = keep_alive  # HTTP/1.1 connections reused (tests: HTTP/1.0, closed)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._injections: list[_Injection] = []
        self._storms: list[tuple[str, float, float, random.Random]] = []
        self.storm_faults: Counter[str] = Counter()
        self._thumbnail_requests: Counter[str] = Counter()
        self._search_calls = 0
        self._videos_calls = 0
        self._search_used = 0
        self._units_used = 0
        self._api: _Server | None = None
        self._thumbs: _Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        """Bind both servers to ephemeral ports and serve from daemon threads."""
        if self._api is not None:
            return self
        self._api = _Server(self._handle_api, self.keep_alive)
        self._thumbs = _Server(self._handle_thumbnail, self.keep_alive)
        for server in (self._api, self._thumbs):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close both listening sockets."""
        servers = [s for s in (self._api, self._thumbs) if s is not None]
        self._api = self._thumbs = None
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _port(self, server: _Server | None) -> int:
        if server is None:
            raise RuntimeError("FakeYouTube is not started: call start() or use it in a with")
        return int(server.server_address[1])

    @property
    def api_endpoint(self) -> str:
        """Root URL for ``client_options={'api_endpoint': ...}`` (with its trailing slash)."""
        return f"http://127.0.0.1:{self._port(self._api)}/"

    @property
    def thumbnail_host(self) -> str:
        """host:port of the thumbnail server (an entry for THUMBSEARCH_ALLOWED_HOSTS)."""
        return f"127.0.0.1:{self._port(self._thumbs)}"

    @property
    def thumbnail_base(self) -> str:
        """Thumbnail root, standing in for https://i.ytimg.com/vi."""
        return f"http://{self.thumbnail_host}/vi"

    def thumbnail_url(self, video_id: str, name: str = "mqdefault") -> str:
        """URL of one thumbnail on the fake host."""
        return f"{self.thumbnail_base}/{video_id}/{name}.jpg"

    # -- catalogue -------------------------------------------------------------

    @property
    def videos(self) -> dict[str, FakeVideo]:
        """The catalogue by id (a copy)."""
        with self._lock:
            return dict(self._videos)

    def put(self, video: FakeVideo) -> None:
        """Add a video or replace the one with its id (e.g. to mark it deleted)."""
        with self._lock:
            self._videos[video.video_id] = video

    def publish(self, videos: Iterable[FakeVideo], to: Sequence[str] = ()) -> None:
        """Upload ``videos`` now (between two runs): each joins the catalogue and, in
        the order given, comes first in the results of every search in ``to`` (a search
        not listed yet starts with them). Their thumbnails are rendered from their own
        ``frame`` (e.g. an edited photo). An id already in the catalogue is a ValueError."""
        fresh = list(videos)
        ids = [video.video_id for video in fresh]
        with self._lock:
            taken = [i for i in ids if i in self._videos]
            if taken or len(set(ids)) != len(ids):
                raise ValueError(f"already uploaded: {taken or ids}")
            for video in fresh:
                self._videos[video.video_id] = video
            for query in to:
                listed = self.searches.get(query, [])
                self.searches[query] = ids + [i for i in listed if i not in ids]

    # -- observation -----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request both servers answered, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def search_calls(self) -> int:
        """Requests to /youtube/v3/search, whatever their outcome."""
        with self._lock:
            return self._search_calls

    @property
    def videos_calls(self) -> int:
        """Requests to /youtube/v3/videos, whatever their outcome."""
        with self._lock:
            return self._videos_calls

    @property
    def thumbnail_requests(self) -> Counter[str]:
        """Thumbnail requests per video id (all sizes, any outcome)."""
        with self._lock:
            return Counter(self._thumbnail_requests)

    @property
    def search_quota_used(self) -> int:
        """search.list calls charged to the search bucket."""
        with self._lock:
            return self._search_used

    @property
    def units_used(self) -> int:
        """Units charged to the shared bucket (videos.list: 1 a call)."""
        with self._lock:
            return self._units_used

    # -- fault injection -------------------------------------------------------

    def inject(
        self,
        path_prefix: str,
        status: int | None = None,
        reason: str | None = None,
        *,
        times: int | None = 1,
        delay: float | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` requests whose path starts with ``path_prefix`` misbehave.

        With ``status`` they answer Google's error body for it (``reason``
        picks errors[0].reason, e.g. "rateLimitExceeded"; thumbnail paths get
        an HTML body, or the grey placeholder for 404); with ``delay`` they
        first sleep that many seconds. ``times=None`` keeps it up until
        ``clear_injections()``. Injected answers are not charged to quota.
        """
        if status is None and delay is None:
            raise ValueError("inject() needs a status, a delay or both")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._injections.append(_Injection(path_prefix, status, reason, message, times, delay))

    def storm(self, path_prefix: str, rate: float, *, seed: int = 0, stall: float = 1.5) -> None:
        """Answer a random ``rate`` of the requests under ``path_prefix`` with a fault (seeded).

        Faults: 500 backendError, 503 backendError, 429 rateLimitExceeded, or a stall of
        ``stall`` seconds before a normal answer (a timeout for a client waiting less).
        Counted by kind in ``storm_faults``; explicit ``inject()`` answers come first.
        """
        if not 0.0 <= rate < 1.0:
            raise ValueError("rate must be in [0, 1)")
        with self._lock:
            self._storms.append((path_prefix, rate, stall, random.Random(seed)))

    def clear_injections(self) -> None:
        """Drop every pending injection and storm."""
        with self._lock:
            self._injections.clear()
            self._storms.clear()

    def _take_injection(self, path: str) -> _Injection | None:
        with self._lock:
            for injection in self._injections:
                if path.startswith(injection.path_prefix):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                        if injection.remaining == 0:
                            self._injections.remove(injection)
                    return injection
            for prefix, rate, stall, rng in self._storms:
                if path.startswith(prefix) and rng.random() < rate:
                    kind = rng.choice(_STORM_KINDS)
                    self.storm_faults[kind] += 1
                    if kind == "timeout":
                        return _Injection(prefix, None, None, None, None, stall)
                    status, reason = kind.split(" ")
                    return _Injection(prefix, int(status), reason, None, None, None)
        return None

    def _record(
        self, server: str, method: str, path: str, params: dict[str, list[str]], reply: _Reply
    ) -> _Reply:
        with self._lock:
            self._requests.append(RecordedRequest(server, method, path, params, reply.status))
        return reply

    # -- API server ------------------------------------------------------------

    def _handle_api(self, method: str, path: str, params: dict[str, list[str]]) -> _Reply:
        with self._lock:
            if path == "/youtube/v3/search":
                self._search_calls += 1
            elif path == "/youtube/v3/videos":
                self._videos_calls += 1
        return self._record("api", method, path, params, self._api_reply(method, path, params))

    def _api_reply(self, method: str, path: str, params: dict[str, list[str]]) -> _Reply:
        injection = self._take_injection(path)
        if injection is not None:
            if injection.delay:
                time.sleep(injection.delay)
            if injection.status is not None:
                body = google_error(injection.status, injection.reason, injection.message)
                return _json_reply(injection.status, body)
        if path not in ("/youtube/v3/search", "/youtube/v3/videos"):
            return _Reply(404, b"<html><body>Not Found</body></html>", "text/html; charset=UTF-8")
        if method not in ("GET", "HEAD"):
            return _json_reply(405, google_error(405, "httpMethodNotAllowed", "Method Not Allowed"))
        key = _first(params, "key")
        if not key:
            return _json_reply(403, google_error(403, "forbidden", MISSING_KEY_MESSAGE))
        if key != self.api_key:
            return _json_reply(400, API_KEY_INVALID_BODY)
        with self._lock:
            if path == "/youtube/v3/search":
                spent = self._search_used >= self.search_quota
                self._search_used += 0 if spent else 1
            else:
                spent = self._units_used >= self.units_quota
                self._units_used += 0 if spent else 1
        if spent:
            return _json_reply(403, google_error(403, "quotaExceeded"))
        if path == "/youtube/v3/search":
            return self._search(params)
        return self._videos_list(params)

    def _parts(self, params: Mapping[str, list[str]], allowed: frozenset[str]) -> set[str] | _Reply:
        parts = _split_multi(params, "part")
        if not parts:
            return _json_reply(
                400,
                google_error(400, "required", "Required parameter: part", location="part"),
            )
        for part in parts:
            if part not in allowed:
                return _json_reply(
                    400,
                    google_error(
                        400, "unknownPart", f"'{part}'", domain="youtube.part", location="part"
                    ),
                )
        return set(parts)

    def _thumbnails(self, video: FakeVideo, names: Sequence[str]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for name in names:
            width, height = samples.THUMBNAIL_SIZES[name]
            details[_DETAIL_KEYS[name]] = {
                "url": self.thumbnail_url(video.video_id, name),
                "width": width,
                "height": height,
            }
        return details

    def _matches(self, q: str | None) -> list[FakeVideo]:
        with self._lock:
            videos = dict(self._videos)
            listed = self.searches.get(q) if q is not None else None
        if listed is not None:
            return [videos[i] for i in listed if i in videos]
        wanted = _words(q or "")
        if q and not wanted:
            return []
        return [
            video
            for video in videos.values()
            if not video.deleted and wanted <= _words(video.title) | _words(" ".join(video.tags))
        ]

    def _search(self, params: dict[str, list[str]]) -> _Reply:
        parts = self._parts(params, _SEARCH_PARTS)
        if isinstance(parts, _Reply):
            return parts
        raw_max = _first(params, "maxResults") or "5"
        try:
            max_results = int(raw_max)
        except ValueError:
            max_results = -1
        if not 0 <= max_results <= 50:
            message = f"Invalid value '{raw_max}'. Values must be within the range: [0, 50]"
            return _json_reply(
                400, google_error(400, "invalidParameter", message, location="maxResults")
            )
        offset = 0
        token = _first(params, "pageToken")
        if token:
            parsed = _parse_page_token(token)
            if parsed is None:
                message = "The request specifies an invalid page token."
                body = google_error(
                    400,
                    "invalidPageToken",
                    message,
                    domain="youtube.parameter",
                    location="pageToken",
                )
                return _json_reply(400, body)
            position, backwards = parsed
            offset = max(0, position - max_results) if backwards else position

        types = _split_multi(params, "type")
        found = [] if types and "video" not in types else self._matches(_first(params, "q"))
        channel = _first(params, "channelId")
        after, before = _first(params, "publishedAfter"), _first(params, "publishedBefore")
        found = [
            v
            for v in found
            if (channel is None or v.channel_id == channel)
            and (after is None or _timestamp(v.published_at) >= _timestamp(after))
            and (before is None or _timestamp(v.published_at) < _timestamp(before))
        ]
        order = _first(params, "order") or "relevance"
        if order == "date":
            found.sort(key=lambda v: _timestamp(v.published_at), reverse=True)
        elif order == "viewCount":
            found.sort(key=lambda v: v.view_count, reverse=True)
        elif order == "title":
            found.sort(key=lambda v: v.title.lower())

        reachable = found[: self.max_search_results]
        page = reachable[offset : offset + max_results]
        items = [self._search_item(video, parts) for video in page]
        response: dict[str, Any] = {"kind": "youtube#searchListResponse", "etag": ""}
        if max_results and offset + max_results < len(reachable):
            response["nextPageToken"] = _page_token(offset + max_results, backwards=False)
        if max_results and offset > 0:
            response["prevPageToken"] = _page_token(offset, backwards=True)
        response["regionCode"] = _first(params, "regionCode") or self.region_code
        response["pageInfo"] = {"totalResults": len(found), "resultsPerPage": max_results}
        response["items"] = items
        response["etag"] = _etag(response)
        return _json_reply(200, response)

    def _search_item(self, video: FakeVideo, parts: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": "youtube#searchResult",
            "etag": _etag(["search", video.video_id, video.title]),
            "id": {"kind": "youtube#video", "videoId": video.video_id},
        }
        if "snippet" in parts:
            # The real snippet also carries publishTime (a copy of publishedAt),
            # which the discovery document does not declare; left out.
            item["snippet"] = {
                "publishedAt": video.published_at,
                "channelId": video.channel_id,
                "title": _html_escape(video.title),
                "description": _html_escape(video.description),
                "thumbnails": self._thumbnails(video, ("default", "mqdefault", "hqdefault")),
                "channelTitle": _html_escape(video.channel_title),
                "liveBroadcastContent": "none",
            }
        return item

    def _videos_list(self, params: dict[str, list[str]]) -> _Reply:
        parts = self._parts(params, _VIDEO_PARTS)
        if isinstance(parts, _Reply):
            return parts
        ids = _split_multi(params, "id")
        if not ids:
            message = "No filter selected. Expected one of: myRating, chart, id"
            body = google_error(
                400, "missingRequiredParameter", message, domain="youtube.parameter"
            )
            return _json_reply(400, body)
        if len(ids) > _MAX_IDS:
            # YouTube refuses more than 50 ids; the exact wording is approximated.
            message = "The request specifies an invalid filter parameter."
            body = google_error(
                400, "invalidFilters", message, domain="youtube.parameter", location="id"
            )
            return _json_reply(400, body)
        with self._lock:
            videos = dict(self._videos)
        items = []
        for video_id in dict.fromkeys(ids):
            video = videos.get(video_id)
            if video is not None and not video.deleted:
                items.append(self._video_item(video, parts))
        response: dict[str, Any] = {
            "kind": "youtube#videoListResponse",
            "etag": "",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        response["etag"] = _etag(response)
        return _json_reply(200, response)

    def _video_item(self, video: FakeVideo, parts: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": "youtube#video", "etag": "", "id": video.video_id}
        if "snippet" in parts:
            names = ["default", "mqdefault", "hqdefault"]
            names += ["sddefault"] if video.has_standard else []
            names += ["maxresdefault"] if video.has_maxres else []
            snippet: dict[str, Any] = {
                "publishedAt": video.published_at,
                "channelId": video.channel_id,
                "title": video.title,
                "description": video.description,
                "thumbnails": self._thumbnails(video, names),
                "channelTitle": video.channel_title,
            }
            if video.tags:  # YouTube leaves the key out when there are none
                snippet["tags"] = list(video.tags)
            snippet["categoryId"] = video.category_id
            snippet["liveBroadcastContent"] = "none"
            if video.default_language:
                snippet["defaultLanguage"] = video.default_language
            snippet["localized"] = {"title": video.title, "description": video.description}
            if video.default_language:
                snippet["defaultAudioLanguage"] = video.default_language
            item["snippet"] = snippet
        if "contentDetails" in parts:
            item["contentDetails"] = {
                "duration": video.duration,
                "dimension": "2d",
                "definition": "hd" if video.has_maxres else "sd",
                "caption": "false",
                "licensedContent": False,
                "contentRating": {},
                "projection": "rectangular",
            }
        if "statistics" in parts:
            # Counts are strings in the API (they can exceed 2**53).
            item["statistics"] = {
                "viewCount": str(video.view_count),
                "likeCount": str(video.like_count),
                "favoriteCount": "0",
                "commentCount": str(video.comment_count),
            }
        if "status" in parts:
            item["status"] = {
                "uploadStatus": "processed",
                "privacyStatus": "public",
                "license": "youtube",
                "embeddable": True,
                "publicStatsViewable": True,
                "madeForKids": False,
            }
        item["etag"] = _etag(item)
        return item

    # -- thumbnail server ------------------------------------------------------

    def _handle_thumbnail(self, method: str, path: str, params: dict[str, list[str]]) -> _Reply:
        match = re.fullmatch(r"/vi/([A-Za-z0-9_-]{11})/([a-z]+)\.jpg", path)
        if match:
            with self._lock:
                self._thumbnail_requests[match.group(1)] += 1
        return self._record(
            "thumbnails", method, path, params, self._thumbnail_reply(method, path, match)
        )

    def _thumbnail_reply(self, method: str, path: str, match: re.Match[str] | None) -> _Reply:
        injection = self._take_injection(path)
        if injection is not None:
            if injection.delay:
                time.sleep(injection.delay)
            if injection.status == 404:
                return _Reply(404, placeholder_jpeg(), "image/jpeg")
            if injection.status is not None:
                body = f"<html><body>Error {injection.status}</body></html>".encode()
                return _Reply(injection.status, body, "text/html; charset=UTF-8")
        if method not in ("GET", "HEAD") or match is None:
            return _Reply(404, placeholder_jpeg(), "image/jpeg")
        with self._lock:
            video = self._videos.get(match.group(1))
        name = match.group(2)
        if video is None or not video.has_thumbnail(name):
            return _Reply(404, placeholder_jpeg(), "image/jpeg")
        if video.corrupt_thumbnail:
            return _Reply(200, _CORRUPT_BODY, "image/jpeg")
        headers = (("Cache-Control", "public, max-age=7200"),)
        return _Reply(200, video.thumbnail_jpeg(name), "image/jpeg", headers)


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- the photo catalogue -------------------------------------------------------

_ORIGINAL_CHANNELS = {
    "astronaut": "NASA Archive Clips",
    "rocket": "NASA Archive Clips",
    "hubble_deep_field": "Deep Sky Daily",
    "chelsea": "Chelsea & Friends",
    "coffee": "Home Barista",
    "camera": "Photo History",
    "coins": "Photo History",
    "motorcycle": "Garage Stories",
    "china": "Travel Postcards",
    "flower": "Garden Diaries",
}
_REUPLOADERS = ("Reupload Central", "Daily Clips 4U", "ThumbFarm", "Viral Mirror")
_TAGS = {
    "astronaut": ("space", "nasa", "astronaut"),
    "rocket": ("space", "nasa", "rocket", "launch"),
    "hubble_deep_field": ("space", "hubble", "galaxies"),
    "chelsea": ("cat", "cats", "pets", "animals"),
    "coffee": ("coffee", "espresso", "latte"),
    "camera": ("photography", "camera", "film"),
    "coins": ("coins", "collection"),
    "motorcycle": ("motorcycle", "garage"),
    "china": ("travel", "china", "temple"),
    "flower": ("flowers", "garden", "nature"),
}
_CLICKBAIT = ("TOP 10 MOMENTS", "You WON'T believe this", "MUST SEE!!!", "Full video (HD)")

#: Queries of photo_catalogue() and the photos whose main videos they find.
_QUERY_PHOTOS = {
    "cats": ("chelsea",),
    "space": ("astronaut", "rocket", "hubble_deep_field"),
    "nasa": ("astronaut", "rocket"),
    "travel": ("china", "motorcycle"),
    "photography": ("camera", "coins", "flower"),
}
_REUPLOADS_PER_PHOTO = 2  # on the main queries
_EXTRA_REUPLOADS_PER_PHOTO = 4  # only found by "reuploads" (and "animals")


def _channel_id(title: str) -> str:
    digest = hashlib.sha256(("channel:" + title).encode()).digest()[:16]
    return "UC" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _iso_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{secs}S" if secs or text == "PT" else "")


def _reupload_frame(small: Image.Image, rng: np.random.Generator, k: int) -> Image.Image:
    """A re-uploader's 16:9 frame from a 640x360 one: a different mix of edits for each k."""
    frame = small
    if k % 2 == 0:
        frame = samples.crop(frame, float(rng.uniform(0.08, 0.2)))
    if k % 3 == 1:
        frame = samples.hflip(frame)
    if k % 2 == 1 or k >= 4:
        frame = samples.color_shift(
            frame,
            brightness=float(rng.uniform(0.85, 1.15)),
            saturation=float(rng.uniform(0.7, 1.3)),
            hue_degrees=float(rng.uniform(-15, 15)),
        )
    if k in (0, 3, 5):
        frame = samples.draw_title(frame, _CLICKBAIT[k % len(_CLICKBAIT)])
    if k in (1, 2, 5):
        frame = samples.draw_duration_badge(frame, f"{int(rng.integers(1, 59))}:{k:02d}")
    return samples.jpeg_reencode(frame, int(rng.integers(35, 85)))


@functools.cache
def _catalogue(seed: int) -> tuple[tuple[FakeVideo, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Build the catalogue once per seed; FakeVideo is frozen, so sharing it is safe."""
    rng = np.random.default_rng(seed)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    videos: list[FakeVideo] = []
    main_ids: dict[str, list[str]] = {}
    extra_ids: dict[str, list[str]] = {}

    def make(
        key: str,
        photo_name: str,
        title: str,
        channel: str,
        frame: Image.Image,
        when: datetime,
        **flags: Any,
    ) -> FakeVideo:
        video_id = samples.video_id_for(f"catalogue:{seed}:{key}")
        video = FakeVideo(
            video_id=video_id,
            title=title,
            description=f"{title}\n\nUploaded by {channel}. #{' #'.join(_TAGS[photo_name])}",
            channel_id=_channel_id(channel),
            channel_title=channel,
            published_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            duration=_iso_duration(int(rng.integers(20, 4 * 3600))),
            view_count=int(rng.integers(100, 5_000_000)),
            like_count=int(rng.integers(0, 50_000)),
            comment_count=int(rng.integers(0, 5_000)),
            tags=_TAGS[photo_name],
            category_id="15" if photo_name == "chelsea" else "22",
            frame=frame,
            **flags,
        )
        videos.append(video)
        return video

    photos = samples.sample_photos()
    for index, (name, photo) in enumerate(photos.items()):
        title = samples.PHOTO_TITLES[name]
        when = base + timedelta(days=11 * index, seconds=int(rng.integers(86_400)))
        original_key = f"{name}:original"
        if name == "rocket":
            # One id that starts with '-', which breaks naive argument parsing.
            n = 0
            while not samples.video_id_for(f"catalogue:{seed}:{name}:original:{n}").startswith("-"):
                n += 1
            original_key = f"{name}:original:{n}"
        frame = samples.youtube_thumbnail(photo, "maxresdefault")
        small = frame.resize((640, 360), Image.Resampling.LANCZOS)
        original = make(
            original_key, name, title, _ORIGINAL_CHANNELS[name], frame, when, has_maxres=True
        )
        main_ids[name] = [original.video_id]
        extra_ids[name] = []
        for k in range(_REUPLOADS_PER_PHOTO + _EXTRA_REUPLOADS_PER_PHOTO):
            later = when + timedelta(days=int(rng.integers(1, 600)))
            channel = _REUPLOADERS[(index + k) % len(_REUPLOADERS)]
            reupload = make(
                f"{name}:reupload:{k}",
                name,
                f"{title} (reupload {k + 1})" if k % 2 == 0 else f"{title.upper()} [HD]",
                channel,
                _reupload_frame(small, rng, k),
                later,
            )
            target = main_ids if k < _REUPLOADS_PER_PHOTO else extra_ids
            target[name].append(reupload.video_id)

    coffee_frame = samples.youtube_thumbnail(photos["coffee"], "maxresdefault").resize((640, 360))
    odd_one_out = base + timedelta(days=500)
    missing = make(
        "coffee:missing",
        "coffee",
        "Espresso tutorial (private draft)",
        "Home Barista",
        coffee_frame,
        odd_one_out,
        thumbnail_missing=True,
    )
    corrupt = make(
        "coffee:corrupt",
        "coffee",
        "Espresso tutorial (broken upload)",
        _REUPLOADERS[0],
        coffee_frame,
        odd_one_out + timedelta(hours=1),
        corrupt_thumbnail=True,
    )
    deleted = make(
        "coffee:deleted",
        "coffee",
        "Espresso tutorial (removed)",
        _REUPLOADERS[1],
        coffee_frame,
        odd_one_out + timedelta(hours=2),
        deleted=True,
    )

    searches: dict[str, list[str]] = {
        query: [i for photo in names for i in main_ids[photo]]
        for query, names in _QUERY_PHOTOS.items()
    }
    searches["animals"] = main_ids["chelsea"] + extra_ids["chelsea"]
    searches["coffee"] = main_ids["coffee"] + [missing.video_id, corrupt.video_id, deleted.video_id]
    searches["reuploads"] = [
        i for photo in main_ids for i in main_ids[photo][1:] + extra_ids[photo]
    ]
    ids = [video.video_id for video in videos]
    if len(set(ids)) != len(ids):
        raise RuntimeError("photo_catalogue produced a duplicate id; change the key scheme")
    return tuple(videos), tuple((q, tuple(found)) for q, found in searches.items())


def photo_catalogue(seed: int = 0) -> tuple[list[FakeVideo], dict[str, list[str]]]:
    """Videos made from the sample photos, and the searches that find them.

    Each photo has an original upload (1280x720 frame, maxres available) and
    six re-uploads on other channels (cropped, mirrored, recoloured, titled,
    badged, re-encoded 640x360 frames). Queries: "cats" (3), "animals" (7,
    overlapping "cats"), "space" (9), "nasa" (6, inside "space"), "travel"
    (6), "photography" (9), "coffee" (6: three good videos, then one whose
    thumbnails are missing, one whose thumbnail is corrupt, one deleted), and
    "reuploads" (60, for paging). The rocket original's id starts with '-';
    the chelsea original's title holds an apostrophe and an ampersand.
    """
    videos, searches = _catalogue(seed)
    return list(videos), {query: list(ids) for query, ids in searches}
