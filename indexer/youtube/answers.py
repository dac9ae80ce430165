"""Typed models of the search.list and videos.list answers (the schemas of the discovery
document ``youtube.v3.json``), checked before anything is used."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, WrapValidator

from indexer.bounds import is_video_id
from indexer.errors import MalformedAnswerError
from indexer.records import VideoMeta

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_COUNT",
    "MAX_DURATION_SECONDS",
    "DetailsList",
    "PageInfo",
    "ResourceId",
    "SearchListResponse",
    "SearchPage",
    "SearchResult",
    "SearchResultSnippet",
    "Thumbnail",
    "ThumbnailDetails",
    "Video",
    "VideoContentDetails",
    "VideoDetails",
    "VideoListResponse",
    "VideoSnippet",
    "VideoStatistics",
    "parse_search_answer",
    "parse_videos_answer",
    "seconds_of_duration",
]

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a page of 50 results is about 60 KB
MAX_COUNT = 2**63 - 1  # SQLite's INTEGER is int64
MAX_DURATION_SECONDS = 10 * 366 * 86_400  # ten years: longer than any video or stream
MAX_PAGE_TOKEN = 1024  # YouTube's tokens are a few dozen characters
MAX_URL = 2048
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Characters kept of each text field (YouTube's own limits are smaller: a title is at
# most 100 characters, a description 5000 bytes, all tags together 500 characters).
TEXT_LIMITS = {"title": 1000, "description": 20_000, "channel_title": 1000,
               "channel_id": 100, "category_id": 100, "default_language": 100}
MAX_TAGS = 500
MAX_TAG = 500

_DIGITS = re.compile(r"[0-9]{1,19}")
_DURATION = re.compile(
    r"P(?:([0-9]{1,10})W)?(?:([0-9]{1,10})D)?"
    r"(?:T(?:([0-9]{1,10})H)?(?:([0-9]{1,10})M)?(?:([0-9]{1,10})S)?)?")


def seconds_of_duration(text: str) -> int | None:
    """Seconds of an ISO 8601 duration as videos.list gives it ('PT1H2M3S'); None when it
    is not one or lasts more than MAX_DURATION_SECONDS."""
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    return total if total <= MAX_DURATION_SECONDS else None


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value if EARLIEST <= value <= LATEST else None


def _lenient(check: Callable[[Any], Any], problem: str) -> WrapValidator:
    """A field that becomes None, counted in the context's skips, when ``check`` refuses it."""

    def validate(value: Any, handler: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        result = check(value)
        if result is None:
            context = info.context or {}
            skips = context.get("skips")
            if skips is not None:
                skips[f"{context.get('method', 'answer')}: {info.field_name} {problem}"] += 1
        return result

    return WrapValidator(validate)


def _count(value: Any) -> int | None:
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
        return number if number <= MAX_COUNT else None
    return None


def _duration(value: Any) -> str | None:
    return value if isinstance(value, str) and seconds_of_duration(value) is not None else None


def _time(value: Any) -> datetime | None:
    return _parse_time(value) if isinstance(value, str) and len(value) <= 64 else None


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_URL else None


Count = Annotated[int | None, _lenient(_count, "is not a count (digits within int64)")]
Duration = Annotated[str | None, _lenient(
    _duration, "is not an ISO 8601 duration of at most ten years")]
Timestamp = Annotated[datetime | None, _lenient(_time, "is not a date between 1970 and 2100")]
Url = Annotated[str | None, _lenient(_url, f"is longer than {MAX_URL} characters")]
Token = Annotated[str, Field(max_length=MAX_PAGE_TOKEN)]


class _Model(BaseModel):
    # Field names are the API's (camelCase). strict: no coercion (an integer is not a
    # string); extra: YouTube adds fields.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class Thumbnail(_Model):
    """One thumbnail image (Thumbnail)."""

    url: Url = None
    width: int | None = None
    height: int | None = None


class ThumbnailDetails(_Model):
    """The thumbnails of a video by size name (ThumbnailDetails)."""

    default: Thumbnail | None = None
    medium: Thumbnail | None = None
    high: Thumbnail | None = None
    standard: Thumbnail | None = None
    maxres: Thumbnail | None = None


class ResourceId(_Model):
    """What a search result is (ResourceId)."""

    kind: str | None = None
    videoId: str | None = None
    channelId: str | None = None
    playlistId: str | None = None


class SearchResultSnippet(_Model):
    """A search result's snippet (SearchResultSnippet); its text is HTML-escaped."""

    publishedAt: Timestamp = None
    channelId: str | None = None
    title: str | None = None
    description: str | None = None
    channelTitle: str | None = None
    thumbnails: ThumbnailDetails | None = None


class SearchResult(_Model):
    """One item of a search page (SearchResult)."""

    kind: str | None = None
    id: ResourceId
    snippet: SearchResultSnippet | None = None


class PageInfo(_Model):
    """Paging counts (PageInfo)."""

    totalResults: int | None = None
    resultsPerPage: int | None = None


class SearchListResponse(_Model):
    """A search.list page (SearchListResponse); items are checked one by one."""

    kind: str | None = None
    nextPageToken: Token | None = None
    prevPageToken: Token | None = None
    pageInfo: PageInfo | None = None
    items: list[Any] = Field(default_factory=list)


class VideoSnippet(_Model):
    """A video's snippet (VideoSnippet); its text is not escaped."""

    publishedAt: Timestamp = None
    channelId: str | None = None
    title: str | None = None
    description: str | None = None
    channelTitle: str | None = None
    tags: list[str] | None = None
    categoryId: str | None = None
    defaultLanguage: str | None = None
    thumbnails: ThumbnailDetails | None = None


class VideoContentDetails(_Model):
    """A video's content details (VideoContentDetails): only the duration is read."""

    duration: Duration = None


class VideoStatistics(_Model):
    """A video's counts (VideoStatistics): strings of digits (uint64) in the API."""

    viewCount: Count = None
    likeCount: Count = None
    commentCount: Count = None


class Video(_Model):
    """One item of a videos.list answer (Video); its parts are checked one by one."""

    kind: str | None = None
    id: str
    snippet: Any = None
    contentDetails: Any = None
    statistics: Any = None


class VideoListResponse(_Model):
    """A videos.list answer (VideoListResponse); items are checked one by one."""

    kind: str | None = None
    nextPageToken: Token | None = None
    pageInfo: PageInfo | None = None
    items: list[Any] = Field(default_factory=list)


# -- reading answers -------------------------------------------------------------

def _where(error: Any) -> str:
    loc = error.get("loc") or ()
    return ".".join("[]" if isinstance(p, int) else str(p) for p in loc) or "item"


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    return f"{_where(error)}: {str(error.get('msg', 'invalid'))[:120]}"


def _malformed(method: str, problem: str) -> MalformedAnswerError:
    return MalformedAnswerError(f"YouTube's {method} answer is malformed ({problem}); "
                                "nothing of it was used")


def _json_object(method: str, content: bytes | str | None) -> dict[str, Any]:
    raw = content if content is not None else b""
    if len(raw) > MAX_ANSWER_BYTES:
        raise _malformed(method, f"{len(raw)} bytes, more than {MAX_ANSWER_BYTES}")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _malformed(method, "JSON nested too deep") from None
    except ValueError as exc:
        raise _malformed(method, f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        kind = {type(None): "null", list: "a list", str: "a string", bool: "a boolean"}.get(
            type(data), "a number")
        raise _malformed(method, f"the answer is {kind}, not an object")
    return data


_Page = TypeVar("_Page", "SearchListResponse", "VideoListResponse")


def _page(model: type[_Page], method: str, data: dict[str, Any], limit: int) -> _Page:
    try:
        page = model.model_validate(data)
    except ValidationError as exc:
        raise _malformed(method, _first_problem(exc)) from None
    if len(page.items) > limit:
        raise _malformed(method, f"{len(page.items)} items, more than the {limit} asked for")
    return page


def _cut(text: str | None, name: str) -> str:
    return (text or "")[:TEXT_LIMITS[name]]


def _medium_url(thumbnails: ThumbnailDetails | None) -> str:
    medium = thumbnails.medium if thumbnails is not None else None
    return (medium.url if medium is not None else None) or ""


def _video_meta(video_id: str, snippet: SearchResultSnippet | VideoSnippet | None, *,
                escaped: bool) -> VideoMeta:
    if snippet is None:
        return VideoMeta(video_id=video_id, source="youtube")
    clean: Callable[[str], str] = html.unescape if escaped else str
    return VideoMeta(
        video_id=video_id, source="youtube",
        title=_cut(clean(snippet.title or ""), "title"),
        description=_cut(clean(snippet.description or ""), "description"),
        channel_id=_cut(snippet.channelId, "channel_id"),
        channel_title=_cut(clean(snippet.channelTitle or ""), "channel_title"),
        published_at=snippet.publishedAt,
        thumbnail_url=_medium_url(snippet.thumbnails))


@dataclass(frozen=True)
class SearchPage:
    """One page of search results (the items that passed the checks)."""

    videos: list[VideoMeta]
    next_page_token: str | None


def parse_search_answer(content: bytes | str | None, max_results: int,
                        skips: Counter[str]) -> SearchPage:
    """The videos of a search.list page asked with ``maxResults=max_results``.

    Raises MalformedAnswerError for a page that is not the documented shape; bad items
    are skipped and counted in ``skips``.

    The models follow the schemas of the discovery document google-api-python-client
    ships (``youtube.v3.json``): SearchListResponse, SearchResult, ResourceId,
    SearchResultSnippet, VideoListResponse, Video, VideoSnippet, VideoContentDetails,
    VideoStatistics (counts are strings of digits, format uint64), ThumbnailDetails and
    Thumbnail. Fields thumbsearch does not read may be anything (YouTube adds fields); a
    field it reads with another type than documented is refused.

    Three levels of trouble, three outcomes:
    - a page that is not the documented shape (not JSON, not an object, ``items`` not a
      list, more items than asked for, a page token that is not a short string) raises
      MalformedAnswerError: nothing of the page is used;
    - a bad item (not an object, not a video, an id that is not exactly 11 characters of
      [A-Za-z0-9_-], a part of the wrong type) is skipped and counted by its reason;
    - a value out of range (a count that is not digits or does not fit int64, a duration
      that is not ISO 8601 or longer than ten years, a date outside 1970..2100, an
      overlong thumbnail URL) becomes None and is counted; text is cut to a bound.
    """
    method = "search.list"
    page: SearchListResponse = _page(SearchListResponse, method,
                                     _json_object(method, content), max_results)
    context = {"skips": skips, "method": method}
    videos: list[VideoMeta] = []
    for item in page.items:
        try:
            result = SearchResult.model_validate(item, context=context)
        except ValidationError as exc:
            skips[f"{method}: {_first_problem(exc)}"] += 1
            continue
        if result.id.kind is not None and result.id.kind != "youtube#video":
            skips[f"{method}: not a video (id.kind)"] += 1
        elif not is_video_id(result.id.videoId):
            skips[f"{method}: id.videoId is not a video id"] += 1
        elif any(v.video_id == result.id.videoId for v in videos):
            skips[f"{method}: a video repeated on the page"] += 1
        else:
            videos.append(_video_meta(result.id.videoId, result.snippet, escaped=True))
    return SearchPage(videos=videos, next_page_token=page.nextPageToken or None)


@dataclass(frozen=True)
class VideoDetails:
    """What videos.list (part=snippet,contentDetails,statistics) says about one video;
    None where the answer had no usable value."""

    meta: VideoMeta  # the snippet's fields, as a search result carries them
    duration: str | None = None
    duration_seconds: int | None = None
    view_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    tags: tuple[str, ...] = field(default=())
    category_id: str | None = None
    default_language: str | None = None

    @property
    def video_id(self) -> str:
        """The video these details describe."""
        return self.meta.video_id


class DetailsList(list[VideoDetails]):
    """The usable items of a videos.list answer.

    ``unattributed`` counts items skipped without knowing which asked id they answer:
    while it is not 0, an id absent from the list is not evidence the video is gone.
    """

    unattributed: int = 0


def _part(model: type[_Model], value: Any, name: str, context: dict[str, Any],
          skips: Counter[str]) -> Any:
    if value is None:
        return None
    try:
        return model.model_validate(value, context=context)
    except ValidationError as exc:
        skips[f"videos.list: {name}.{_first_problem(exc)}"] += 1
        return None


def parse_videos_answer(content: bytes | str | None, asked: Sequence[str],
                        skips: Counter[str]) -> DetailsList:
    """The videos of a videos.list answer to the ids ``asked``.

    Raises MalformedAnswerError for an answer that is not the documented shape. An item
    that is not a video of an id asked for is skipped; a part of an item (snippet,
    contentDetails, statistics) of the wrong shape is dropped; both are counted.
    """
    method = "videos.list"
    wanted = set(asked)
    page: VideoListResponse = _page(VideoListResponse, method,
                                    _json_object(method, content), len(wanted))
    context = {"skips": skips, "method": method}
    items = DetailsList()
    for item in page.items:
        try:
            video = Video.model_validate(item, context=context)
        except ValidationError as exc:
            skips[f"{method}: {_first_problem(exc)}"] += 1
            items.unattributed += 1
            continue
        if video.id not in wanted or not is_video_id(video.id):
            skips[f"{method}: id is not one of the video ids asked for"] += 1
            items.unattributed += 1
            continue
        if video.kind is not None and video.kind != "youtube#video":
            skips[f"{method}: not a video (kind)"] += 1
            items.unattributed += 1
            continue
        if any(d.video_id == video.id for d in items):
            skips[f"{method}: a video repeated in the answer"] += 1
            continue
        snippet: VideoSnippet | None = _part(VideoSnippet, video.snippet, "snippet",
                                             context, skips)
        details: VideoContentDetails | None = _part(
            VideoContentDetails, video.contentDetails, "contentDetails", context, skips)
        stats: VideoStatistics | None = _part(VideoStatistics, video.statistics,
                                              "statistics", context, skips)
        duration = details.duration if details is not None else None
        tags = tuple(t[:MAX_TAG] for t in (snippet.tags or ())[:MAX_TAGS]) if snippet else ()
        items.append(VideoDetails(
            meta=_video_meta(video.id, snippet, escaped=False),
            duration=duration,
            duration_seconds=seconds_of_duration(duration) if duration else None,
            view_count=stats.viewCount if stats else None,
            like_count=stats.likeCount if stats else None,
            comment_count=stats.commentCount if stats else None,
            tags=tags,
            category_id=(snippet.categoryId or "")[:TEXT_LIMITS["category_id"]] or None
            if snippet else None,
            default_language=(snippet.defaultLanguage or "")[
                :TEXT_LIMITS["default_language"]] or None if snippet else None))
    return items
