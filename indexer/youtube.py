"""The YouTube Data API boundary: search pages and video details through google-api-python-client.

Every attempt of a call is charged (``charge``) before it is sent, because YouTube
charges retries too; transient failures (5xx, 429, rateLimitExceeded,
userRateLimitExceeded, timeouts) are retried here with exponential backoff and
jitter; quotaExceeded, a bad key and a bad request are never retried.
"""

from __future__ import annotations

import html
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from indexer.errors import (
    ApiKeyInvalidError,
    ApiUnreachableError,
    QuotaExceededError,
    YouTubeError,
)
from indexer.records import VideoMeta
from indexer.redact import mask_url, scrub, url_secrets

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
# Which quota bucket each method is charged to (see indexer.quota).
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


@dataclass(frozen=True)
class VideoDetails:
    """What videos.list (part=snippet,contentDetails,statistics) says about one video."""

    meta: VideoMeta  # the snippet's fields, as a search result carries them
    duration: str | None = None  # ISO 8601, e.g. PT4M13S
    duration_seconds: int | None = None
    view_count: int | None = None  # None when the owner hides it
    like_count: int | None = None
    comment_count: int | None = None
    tags: tuple[str, ...] = field(default=())
    category_id: str | None = None
    default_language: str | None = None

    @property
    def video_id(self) -> str:
        """The video these details describe."""
        return self.meta.video_id


def _snippet_meta(video_id: str, snippet: dict[str, Any], *, escaped: bool) -> VideoMeta:
    """VideoMeta from an API snippet; search.list HTML-escapes its text, videos.list does not."""
    clean = html.unescape if escaped else str
    medium = (snippet.get("thumbnails") or {}).get("medium") or {}
    return VideoMeta(
        video_id=video_id, source="youtube",
        title=clean(snippet.get("title", "")),
        description=clean(snippet.get("description", "")),
        channel_id=snippet.get("channelId", ""),
        channel_title=clean(snippet.get("channelTitle", "")),
        published_at=parse_rfc3339(snippet.get("publishedAt")),
        thumbnail_url=medium.get("url", ""),
    )


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    videos: list[VideoMeta]
    next_page_token: str | None


class YouTubeApi(Protocol):
    """What the ingest worker needs from YouTube."""

    calls: dict[str, int]  # attempts sent per method ("search", "videos"), retries included

    def search_page(self, query: str, page_token: str | None, per_page: int,
                    options: SearchOptions | None = None) -> SearchPage:
        """One page of ``search.list`` (type=video, part=snippet)."""
        ...

    def video_details(self, video_ids: Sequence[str]) -> list[VideoDetails]:
        """``videos.list`` for up to 50 ids; gone or unknown ids are absent from the result."""
        ...


_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_iso_duration(text: str | None) -> int | None:
    """Seconds of an ISO 8601 duration as videos.list gives it ('PT1H2M3S'); None if malformed."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT"):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


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
        self.retries = 0

    def _service(self) -> Any:
        if self._client is None:
            import httplib2
            from googleapiclient.discovery import build

            # The timeout bounds every socket operation of every call.
            self._client = build("youtube", "v3", developerKey=self._api_key,
                                 client_options={"api_endpoint": self._endpoint},
                                 http=httplib2.Http(timeout=self._timeout),
                                 static_discovery=True, cache_discovery=False)
        return self._client

    def _unreachable(self, exc: BaseException) -> ApiUnreachableError:
        secrets = url_secrets(self._endpoint) | {self._api_key}  # a message may repeat either
        return ApiUnreachableError(f"cannot reach the YouTube API at {mask_url(self._endpoint)}: "
                                   f"{scrub(str(exc), secrets)}")

    def _execute(self, method: str, make_request: Callable[[], Any]) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        bucket = _BUCKET[method]
        attempt = 0
        while True:
            if self._charge is not None:
                self._charge(bucket, 1)  # raises QuotaExceededError: nothing is sent
            self.calls[method] += 1  # every attempt is charged by YouTube, failed ones too
            delay: float | None = None
            try:
                result: dict[str, Any] = make_request().execute(num_retries=0)
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
                if type(exc).__module__.startswith("httplib2"):
                    raise self._unreachable(exc) from exc
                raise
            attempt += 1
            self.retries += 1
            self._sleep(delay)

    def search_page(self, query: str, page_token: str | None, per_page: int,
                    options: SearchOptions | None = None) -> SearchPage:
        """One page of video search results, with HTML entities in the snippet decoded."""
        params: dict[str, Any] = {"q": query, "part": "snippet", "type": "video",
                                  "maxResults": max(0, min(per_page, MAX_PER_PAGE))}
        if options is not None:
            params.update(options.params())
        if page_token:
            params["pageToken"] = page_token
        data = self._execute("search", lambda: self._service().search().list(**params))
        found: list[VideoMeta] = []
        for item in data.get("items", []):
            video_id = (item.get("id") or {}).get("videoId")
            if not video_id:
                continue
            found.append(_snippet_meta(video_id, item.get("snippet") or {}, escaped=True))
        return SearchPage(videos=found, next_page_token=data.get("nextPageToken") or None)

    def video_details(self, video_ids: Sequence[str]) -> list[VideoDetails]:
        """One videos.list call (1 unit) for up to 50 ids; absent ids are gone or unknown."""
        ids = list(dict.fromkeys(video_ids))
        if not ids:
            return []
        if len(ids) > MAX_IDS_PER_CALL:
            raise ValueError(f"videos.list takes at most {MAX_IDS_PER_CALL} ids, got {len(ids)}")
        data = self._execute("videos", lambda: self._service().videos().list(
            part=VIDEO_PARTS, id=",".join(ids)))
        out: list[VideoDetails] = []
        for item in data.get("items", []):
            video_id = item.get("id")
            if not isinstance(video_id, str):
                continue
            snippet = item.get("snippet") or {}
            details = item.get("contentDetails") or {}
            stats = item.get("statistics") or {}
            duration = details.get("duration")
            out.append(VideoDetails(
                meta=_snippet_meta(video_id, snippet, escaped=False),
                duration=duration, duration_seconds=parse_iso_duration(duration),
                view_count=_count(stats.get("viewCount")),
                like_count=_count(stats.get("likeCount")),
                comment_count=_count(stats.get("commentCount")),
                tags=tuple(str(t) for t in snippet.get("tags") or ()),
                category_id=snippet.get("categoryId"),
                default_language=snippet.get("defaultLanguage")))
        return out
