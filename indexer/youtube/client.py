"""The YouTube Data API boundary: search pages and video details (google-api-python-client)."""

from __future__ import annotations

import functools
import html
import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from indexer.bounds import quote
from indexer.errors import (
    ApiKeyInvalidError,
    ApiRedirectError,
    ApiUnreachableError,
    MalformedAnswerError,
    QuotaExceededError,
    YouTubeError,
)
from indexer.redact import mask_url, scrub, url_secrets
from indexer.youtube.answers import (
    MAX_ANSWER_BYTES,
    SearchPage,
    VideoDetails,
    parse_search_answer,
    parse_videos_answer,
    seconds_of_duration,
)

__all__ = [
    "MAX_IDS_PER_CALL",
    "GoogleYouTubeApi",
    "SearchOptions",
    "SearchPage",
    "VideoDetails",
    "YouTubeApi",
    "backoff_delay",
    "is_retryable",
    "parse_iso_duration",
    "parse_rfc3339",
    "quota_reset_message",
    "translate_http_error",
]

PACIFIC = ZoneInfo("America/Los_Angeles")
MAX_PER_PAGE = 50
MAX_IDS_PER_CALL = 50  # videos.list takes at most 50 ids a call
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Which quota bucket each method is charged to (see indexer.youtube.quota).
_BUCKET = {"search": "search", "videos": "units"}
VIDEO_PARTS = "snippet,contentDetails,statistics"


@dataclass(frozen=True)
class SearchOptions:
    """Optional search.list filters; None leaves a parameter out."""

    order: str | None = None  # relevance, date, viewCount, rating, title, videoCount
    region_code: str | None = None
    relevance_language: str | None = None
    published_after: datetime | None = None
    safe_search: str | None = None  # none, moderate, strict

    def params(self) -> dict[str, str]:
        """The request parameters these options add."""
        out = {"order": self.order, "regionCode": self.region_code,
               "relevanceLanguage": self.relevance_language, "safeSearch": self.safe_search,
               "publishedAfter": (self.published_after.astimezone(UTC).strftime(
                   "%Y-%m-%dT%H:%M:%SZ") if self.published_after else None)}
        return {k: v for k, v in out.items() if v is not None}


class YouTubeApi(Protocol):
    """What the ingest worker needs from YouTube.

    Every attempt of a call is charged (``charge``) before it is sent, because YouTube
    charges retries too; transient failures (5xx, 429, rateLimitExceeded,
    userRateLimitExceeded, timeouts) are retried here with exponential backoff and
    jitter; quotaExceeded, a bad key and a bad request are never retried.
    """

    calls: dict[str, int]  # attempts sent per method ("search", "videos"), retries included
    skipped: Counter[str]  # answer items (or their fields) dropped by the checks, by reason

    def search_page(self, query: str, page_token: str | None, per_page: int,
                    options: SearchOptions | None = None) -> SearchPage:
        """One page of ``search.list`` (type=video, part=snippet)."""
        ...

    def video_details(self, video_ids: Sequence[str]) -> list[VideoDetails]:
        """``videos.list`` for up to 50 ids; gone or unknown ids are absent from the result."""
        ...


def parse_iso_duration(text: str | None) -> int | None:
    """Seconds of an ISO 8601 duration as videos.list gives it ('PT1H2M3S'); None if
    malformed or longer than ten years."""
    return seconds_of_duration(text) if isinstance(text, str) else None


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_rfc3339(text: str | None) -> datetime | None:
    """Parse YouTube's timestamps ('2024-01-02T03:04:05Z'); None when absent or malformed."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def quota_reset_message(now: datetime | None = None) -> str:
    """When the day's quota resets: midnight Pacific time, with the time left."""
    now = now or datetime.now(UTC)
    local = now.astimezone(PACIFIC)
    reset = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = reset - local
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return (f"the quota resets at midnight Pacific time "
            f"({reset.astimezone(UTC):%Y-%m-%d %H:%M} UTC, in {hours}h{rest // 60:02d}m)")


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random, *, base: float = 1.0,
                  cap: float = 32.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, half jittered."""
    ceiling = min(cap, base * 2 ** attempt)
    return float(ceiling / 2 + rand() * ceiling / 2)


def _error_payload(content: bytes | str | None) -> dict[str, Any]:
    try:
        data = json.loads(content or b"{}")
    except (ValueError, TypeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _reasons(exc: Any) -> set[str]:
    payload = _error_payload(getattr(exc, "content", None))
    return {str(e.get("reason")) for e in payload.get("errors", []) if isinstance(e, dict)}


def is_retryable(exc: Any) -> bool:
    """True for 5xx, 429 and 403 rate limits; never for quotaExceeded, a bad key or request."""
    status = int(getattr(getattr(exc, "resp", None), "status", 0) or 0)
    if status >= 500 or status == 429:
        return True
    return status == 403 and bool(_reasons(exc) & RATE_LIMIT_REASONS)


def translate_http_error(exc: Any) -> YouTubeError:
    """Map a googleapiclient HttpError onto our tree by its reason codes, not its message."""
    status = int(getattr(getattr(exc, "resp", None), "status", 0) or 0)
    payload = _error_payload(getattr(exc, "content", None))
    reasons = {e.get("reason") for e in payload.get("errors", []) if isinstance(e, dict)}
    details = {d.get("reason") for d in payload.get("details", []) if isinstance(d, dict)}
    message = str(payload.get("message") or getattr(exc, "reason", "") or "no message")
    message = html.unescape(message).replace('<a href="/youtube/v3/getting-started#quota">',
                                             "").replace("</a>", "")
    if "quotaExceeded" in reasons or "dailyLimitExceeded" in reasons:
        return QuotaExceededError(f"YouTube API quota exhausted: {quota_reset_message()}")
    if "API_KEY_INVALID" in details or "keyInvalid" in reasons:
        return ApiKeyInvalidError("YouTube rejected the API key (API_KEY_INVALID): "
                                  "check YOUTUBE_API_KEY")
    if status == 403 and ("forbidden" in reasons or "accessNotConfigured" in reasons):
        return ApiKeyInvalidError(f"YouTube refused the key ({status}): {message}")
    return YouTubeError(f"YouTube API error {status}: {message}")


_KEY_PARAM = re.compile(r"([?&]key=)[^&#\s\"']+")


class _RedactKey(logging.Filter):
    """Blanks ``key=...`` in googleapiclient's log records (it logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _KEY_PARAM.sub(r"\1REDACTED", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _redact_client_logs() -> None:
    for name in ("googleapiclient.discovery", "googleapiclient.http", "googleapiclient.model"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactKey) for f in logger.filters):
            logger.addFilter(_RedactKey())


def _redact_error(exc: BaseException) -> None:
    # HttpError's repr (shown in a chained traceback) carries the request URL with the key.
    uri = getattr(exc, "uri", None)
    if isinstance(uri, str):
        exc.uri = _KEY_PARAM.sub(r"\1REDACTED", uri)  # type: ignore[attr-defined]


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the default port made explicit; ValueError if malformed."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _has_control(text: str) -> bool:
    return any(ord(c) < 33 or ord(c) == 127 for c in text)


class _AnswerTooLarge(Exception):
    """A body past MAX_ANSWER_BYTES (raw or inflated); _execute names the method."""


def _too_large(method: str) -> MalformedAnswerError:
    return MalformedAnswerError(
        f"YouTube's {method}.list answer is larger than {MAX_ANSWER_BYTES // (1 << 20)} MiB; "
        "nothing of it was used")


@functools.cache
def _same_origin_http_class() -> type[Any]:
    """httplib2.Http that sends requests (redirect hops included) to one origin only, and
    reads at most MAX_ANSWER_BYTES of a body (httplib2 itself reads any length)."""
    import http.client

    import httplib2

    class BoundedResponse(http.client.HTTPResponse):
        """A response whose whole-body read stops past MAX_ANSWER_BYTES."""

        def read(self, amt: int | None = None) -> bytes:
            if amt is not None:
                return super().read(amt)
            data = super().read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                self.close()
                raise _AnswerTooLarge
            return data

    class BoundedHTTP(httplib2.HTTPConnectionWithTimeout):  # type: ignore[misc]
        response_class = BoundedResponse

    class BoundedHTTPS(httplib2.HTTPSConnectionWithTimeout):  # type: ignore[misc]
        response_class = BoundedResponse

    class SameOriginHttp(httplib2.Http):  # type: ignore[misc]
        """Refuses any request, so any redirect hop, off the endpoint's scheme, host, port."""

        endpoint = ""
        origin: tuple[str, str, int | None] = ("", "", None)

        def request(self, uri: str, method: str = "GET", body: Any = None,
                    headers: Any = None, redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
                    connection_type: Any = None) -> Any:
            shown = _KEY_PARAM.sub(r"\1REDACTED", str(uri))
            try:
                origin = _origin(uri)
            except ValueError:
                origin = None
            if origin is None or _has_control(uri) or not origin[1]:
                raise ApiRedirectError(
                    f"the YouTube API at {self.endpoint} redirected to a malformed URL "
                    f"{quote(shown)}; refused")
            if origin != self.origin:
                scheme, host, port = origin
                raise ApiRedirectError(
                    f"the YouTube API at {self.endpoint} redirected to another host "
                    f"({scheme}://{host}:{port}); refused: only redirects to the endpoint's "
                    "own scheme, host and port are followed")
            bounded = BoundedHTTPS if origin[0] == "https" else BoundedHTTP
            return super().request(uri, method, body, headers, redirections,
                                   connection_type or bounded)

    return SameOriginHttp


class GoogleYouTubeApi:
    """YouTubeApi over google-api-python-client (static discovery: no network to build).

    ``charge(bucket, cost)`` is called before every attempt and may refuse it by
    raising QuotaExceededError; ``on_quota_exceeded(bucket)`` hears when YouTube
    itself answers quotaExceeded. ``sleep`` and ``rand`` are injectable for tests.
    """

    def __init__(self, api_key: str, endpoint: str, timeout: float = 20.0,
                 num_retries: int = 4, *,
                 charge: Callable[[str, int], None] | None = None,
                 on_quota_exceeded: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        _redact_client_logs()
        self._api_key = api_key
        self._endpoint = endpoint
        self._timeout = timeout
        self._num_retries = num_retries
        self._charge = charge
        self._on_quota_exceeded = on_quota_exceeded
        self._sleep = sleep
        self._rand = rand
        self._client: Any = None
        self.calls = {"search": 0, "videos": 0}
        self.skipped: Counter[str] = Counter()
        self.retries = 0

    def _service(self) -> Any:
        if self._client is None:
            from googleapiclient.discovery import build
            from googleapiclient.model import RawModel

            # The timeout bounds every socket operation of every call; redirects are
            # followed only on the endpoint's own origin.
            # A compressed body is inflated to at most MAX_ANSWER_BYTES too.
            http = _same_origin_http_class()(timeout=self._timeout,
                                             decode_limit_hard=MAX_ANSWER_BYTES)
            http.endpoint = self._endpoint
            try:
                http.origin = _origin(self._endpoint)
            except ValueError:
                raise ApiUnreachableError(
                    f"the YouTube API endpoint {quote(self._endpoint)} is not a valid URL"
                ) from None
            # RawModel: the body comes back as bytes, parsed and checked here
            # (indexer.youtube.answers), never trusted to be JSON of the right shape.
            self._client = build("youtube", "v3", developerKey=self._api_key,
                                 client_options={"api_endpoint": self._endpoint},
                                 http=http, model=RawModel(),
                                 static_discovery=True, cache_discovery=False)
        return self._client

    def _unreachable(self, exc: BaseException) -> ApiUnreachableError:
        secrets = url_secrets(self._endpoint) | {self._api_key}  # a message may repeat either
        return ApiUnreachableError(f"cannot reach the YouTube API at {mask_url(self._endpoint)}: "
                                   f"{scrub(str(exc), secrets)}")

    def _execute(self, method: str, make_request: Callable[[], Any]) -> bytes | str:
        from googleapiclient.errors import HttpError

        bucket = _BUCKET[method]
        attempt = 0
        while True:
            if self._charge is not None:
                self._charge(bucket, 1)  # raises QuotaExceededError: nothing is sent
            self.calls[method] += 1  # every attempt is charged by YouTube, failed ones too
            delay: float | None = None
            try:
                result: bytes | str = make_request().execute(num_retries=0)
                return result
            except HttpError as exc:
                _redact_error(exc)
                if attempt >= self._num_retries or not is_retryable(exc):
                    error = translate_http_error(exc)
                    if isinstance(error, QuotaExceededError) and self._on_quota_exceeded:
                        self._on_quota_exceeded(bucket)
                    raise error from exc
                delay = backoff_delay(attempt, self._rand)
                retry_after = _count((getattr(exc, "resp", None) or {}).get("retry-after"))
                if retry_after is not None:
                    delay = max(delay, float(min(retry_after, 60)))
            except (TimeoutError, ConnectionResetError) as exc:
                if attempt >= self._num_retries:
                    raise self._unreachable(exc) from exc
                delay = backoff_delay(attempt, self._rand)
            except OSError as exc:  # refused, DNS: retrying will not help
                raise self._unreachable(exc) from exc
            except Exception as exc:  # httplib2 raises its own types for broken responses
                name = type(exc).__name__
                if isinstance(exc, _AnswerTooLarge) or name in ("DecodeLimitError",
                                                                "DecodeRatioError"):
                    raise _too_large(method) from None
                if name in ("RedirectLimit", "RedirectMissingLocation"):
                    what = ("redirected too many times" if name == "RedirectLimit"
                            else "redirected without a Location")
                    raise ApiRedirectError(
                        f"the YouTube API at {self._endpoint} {what}; refused") from None
                if type(exc).__module__.startswith(("httplib2", "http.client")):
                    raise self._unreachable(exc) from exc
                raise
            attempt += 1
            self.retries += 1
            self._sleep(delay)

    def search_page(self, query: str, page_token: str | None, per_page: int,
                    options: SearchOptions | None = None) -> SearchPage:
        """One page of video search results, checked (indexer.youtube.answers), with HTML
        entities in the snippet decoded."""
        max_results = max(0, min(per_page, MAX_PER_PAGE))
        params: dict[str, Any] = {"q": query, "part": "snippet", "type": "video",
                                  "maxResults": max_results}
        if options is not None:
            params.update(options.params())
        if page_token:
            params["pageToken"] = page_token
        content = self._execute("search", lambda: self._service().search().list(**params))
        return parse_search_answer(content, max_results, self.skipped)

    def video_details(self, video_ids: Sequence[str]) -> list[VideoDetails]:
        """One videos.list call (1 unit) for up to 50 ids; absent ids are gone or unknown.

        The list is a DetailsList: its ``unattributed`` counts items that answered no
        known id, in which case an absent id is no evidence of anything.
        """
        ids = list(dict.fromkeys(video_ids))
        if not ids:
            return []
        if len(ids) > MAX_IDS_PER_CALL:
            raise ValueError(f"videos.list takes at most {MAX_IDS_PER_CALL} ids, got {len(ids)}")
        content = self._execute("videos", lambda: self._service().videos().list(
            part=VIDEO_PARTS, id=",".join(ids)))
        return parse_videos_answer(content, ids, self.skipped)
