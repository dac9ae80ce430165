"""A hostile YouTube Data API on 127.0.0.1: each answer to search.list or videos.list is set
by the test, call by call, so it can be any shape, type, size or redirect.

It speaks the API's paths (``/youtube/v3/search``, ``/youtube/v3/videos``) over
tests.fakes.hostile.HostileServer (raw sockets). Answers queued with ``push`` are
given in order, one a call; once a method's queue is empty it answers the
documented shape: an empty search page, and a valid videos.list item for every id
asked for. Helpers build documented items (SearchResult, Video) a test then spoils.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hostile import Behaviour, HostileServer

__all__ = [
    "SEARCH_PATH",
    "VIDEOS_PATH",
    "HostileApi",
    "json_answer",
    "raw_answer",
    "redirect",
    "search_item",
    "search_page",
    "video_item",
    "videos_page",
]

SEARCH_PATH = "/youtube/v3/search"
VIDEOS_PATH = "/youtube/v3/videos"
_JSON = "application/json; charset=UTF-8"

Answer = Behaviour | Callable[[dict[str, list[str]]], Behaviour]


def json_answer(payload: Any, status: int = 200) -> Behaviour:
    """An answer whose body is ``payload`` as JSON (any JSON value: null, a list, ...)."""
    return Behaviour("ok", json.dumps(payload).encode(), _JSON, status=status)


def raw_answer(body: bytes, content_type: str = _JSON, status: int = 200) -> Behaviour:
    """An answer with exactly this body."""
    return Behaviour("ok", body, content_type, status=status)


def redirect(location: str, status: int = 302) -> Behaviour:
    """A redirect to ``location`` (sent verbatim, however malformed)."""
    return Behaviour("redirect", status=status, location=location)


def search_item(video_id: Any, thumbnail_url: str = "", **snippet: Any) -> dict[str, Any]:
    """A documented SearchResult of a video; ``snippet`` fields replace the defaults."""
    fields: dict[str, Any] = {
        "publishedAt": "2024-01-01T00:00:00Z", "channelId": "UCfakefakefakefakefake00",
        "title": f"video {video_id}", "description": "", "channelTitle": "Fake Channel",
        "liveBroadcastContent": "none",
        "thumbnails": {"medium": {"url": thumbnail_url, "width": 320, "height": 180}},
    }
    fields.update(snippet)
    return {"kind": "youtube#searchResult", "etag": "e",
            "id": {"kind": "youtube#video", "videoId": video_id}, "snippet": fields}


def search_page(items: list[Any], next_page_token: str | None = None) -> dict[str, Any]:
    """A documented SearchListResponse holding ``items``."""
    page: dict[str, Any] = {"kind": "youtube#searchListResponse", "etag": "e",
                            "regionCode": "US",
                            "pageInfo": {"totalResults": len(items),
                                         "resultsPerPage": len(items)},
                            "items": items}
    if next_page_token is not None:
        page["nextPageToken"] = next_page_token
    return page


def video_item(video_id: Any, *, duration: Any = "PT4M13S", view_count: Any = "10",
               like_count: Any = "2", comment_count: Any = "1",
               **snippet: Any) -> dict[str, Any]:
    """A documented Video (snippet, contentDetails, statistics); overrides spoil it."""
    fields: dict[str, Any] = {
        "publishedAt": "2024-01-01T00:00:00Z", "channelId": "UCfakefakefakefakefake00",
        "title": f"details {video_id}", "description": "described",
        "channelTitle": "Fake Channel", "tags": ["a", "b"], "categoryId": "22",
        "thumbnails": {"medium": {"url": "http://127.0.0.1:9/m.jpg", "width": 320,
                                  "height": 180}},
    }
    fields.update(snippet)
    return {"kind": "youtube#video", "etag": "e", "id": video_id, "snippet": fields,
            "contentDetails": {"duration": duration, "dimension": "2d"},
            "statistics": {"viewCount": view_count, "likeCount": like_count,
                           "favoriteCount": "0", "commentCount": comment_count}}


def videos_page(items: list[Any]) -> dict[str, Any]:
    """A documented VideoListResponse holding ``items``."""
    return {"kind": "youtube#videoListResponse", "etag": "e", "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}}


class HostileApi:
    """The API's two list methods on a HostileServer, answering what a test queued."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Answer]] = {SEARCH_PATH: deque(), VIDEOS_PATH: deque()}
        self._lock = threading.Lock()
        self.server = HostileServer(self._route)

    def push(self, path: str, *answers: Answer) -> None:
        """Queue answers for the next calls of ``path`` (SEARCH_PATH or VIDEOS_PATH)."""
        with self._lock:
            self._queues[path].extend(answers)

    @property
    def endpoint(self) -> str:
        """The value of THUMBSEARCH_YOUTUBE_ENDPOINT (trailing slash kept)."""
        return f"http://{self.server.host}/"

    def calls(self, path: str) -> list[dict[str, list[str]]]:
        """The query parameters of each request of ``path`` received so far."""
        out = []
        for raw in list(self.server.requests):
            parts = urlsplit(raw)
            if parts.path == path:
                out.append(parse_qs(parts.query, keep_blank_values=True))
        return out

    def _route(self, raw_path: str) -> Behaviour:
        parts = urlsplit(raw_path)
        params = parse_qs(parts.query, keep_blank_values=True)
        with self._lock:
            queue = self._queues.get(parts.path)
            answer = queue.popleft() if queue else None
        if answer is None:
            if parts.path == SEARCH_PATH:
                return json_answer(search_page([]))
            if parts.path == VIDEOS_PATH:
                ids = [i for v in params.get("id", []) for i in v.split(",") if i]
                return json_answer(videos_page([video_item(i) for i in ids]))
            return json_answer({"error": {"code": 404, "message": "Not Found"}}, 404)
        return answer if isinstance(answer, Behaviour) else answer(params)

    def __enter__(self) -> Self:
        self.server.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.__exit__(exc_type, exc, tb)
