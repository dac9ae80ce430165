"""The YouTube Data API boundary: search pages through google-api-python-client."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
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

__all__ = [
    "GoogleYouTubeApi",
    "SearchPage",
    "YouTubeApi",
    "parse_rfc3339",
    "quota_reset_message",
    "translate_http_error",
]

PACIFIC = ZoneInfo("America/Los_Angeles")
MAX_PER_PAGE = 50


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    videos: list[VideoMeta]
    next_page_token: str | None


class YouTubeApi(Protocol):
    """What the ingest worker needs from YouTube."""

    def search_page(self, query: str, page_token: str | None, per_page: int) -> SearchPage:
        """One page of ``search.list`` (type=video, part=snippet)."""
        ...


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


def _error_payload(content: bytes | str | None) -> dict[str, Any]:
    try:
        data = json.loads(content or b"{}")
    except (ValueError, TypeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


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


class GoogleYouTubeApi:
    """YouTubeApi over google-api-python-client (static discovery: no network to build)."""

    def __init__(self, api_key: str, endpoint: str, timeout: float = 20.0,
                 num_retries: int = 4) -> None:
        self._api_key = api_key
        self._endpoint = endpoint
        self._timeout = timeout
        self._num_retries = num_retries
        self._client: Any = None
        self.calls = {"search": 0, "videos": 0}

    def _service(self) -> Any:
        if self._client is None:
            import httplib2
            from googleapiclient.discovery import build

            self._client = build("youtube", "v3", developerKey=self._api_key,
                                 client_options={"api_endpoint": self._endpoint},
                                 http=httplib2.Http(timeout=self._timeout),
                                 static_discovery=True, cache_discovery=False)
        return self._client

    def _execute(self, request: Any) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        try:
            # Retries 5xx, 429 and the rate-limit reasons with backoff; never quotaExceeded.
            result: dict[str, Any] = request.execute(num_retries=self._num_retries)
            return result
        except HttpError as exc:
            raise translate_http_error(exc) from exc
        except (TimeoutError, OSError) as exc:
            raise ApiUnreachableError(f"cannot reach the YouTube API at {self._endpoint}: "
                                      f"{exc}") from exc
        except Exception as exc:  # httplib2 raises its own types for broken responses
            if type(exc).__module__.startswith("httplib2"):
                raise ApiUnreachableError(f"cannot reach the YouTube API at {self._endpoint}: "
                                          f"{exc}") from exc
            raise

    def search_page(self, query: str, page_token: str | None, per_page: int) -> SearchPage:
        """One page of video search results, with HTML entities in the snippet decoded."""
        params: dict[str, Any] = {"q": query, "part": "snippet", "type": "video",
                                  "maxResults": max(0, min(per_page, MAX_PER_PAGE))}
        if page_token:
            params["pageToken"] = page_token
        self.calls["search"] += 1  # every call is charged, failed ones too
        data = self._execute(self._service().search().list(**params))
        found: list[VideoMeta] = []
        for item in data.get("items", []):
            video_id = (item.get("id") or {}).get("videoId")
            if not video_id:
                continue
            snippet = item.get("snippet") or {}
            thumbs = snippet.get("thumbnails") or {}
            medium = thumbs.get("medium") or {}
            found.append(VideoMeta(
                video_id=video_id, source="youtube",
                title=html.unescape(snippet.get("title", "")),
                description=html.unescape(snippet.get("description", "")),
                channel_id=snippet.get("channelId", ""),
                channel_title=html.unescape(snippet.get("channelTitle", "")),
                published_at=parse_rfc3339(snippet.get("publishedAt")),
                thumbnail_url=medium.get("url", ""),
            ))
        return SearchPage(videos=found, next_page_token=data.get("nextPageToken") or None)
