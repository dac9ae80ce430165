"""The watchlist's routes: list, add (a video or an uploaded image), remove, and the matches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from indexer.bounds import QUOTE_LIMIT
from indexer.errors import (
    FetchError,
    InputError,
    NotFoundError,
    UsageError,
    VideoNotFoundError,
)
from search.gallery import youtube_url
from search.strength import strength
from search.watch import (
    DEFAULT_THRESHOLD,
    MAX_NAME,
    add_to_watchlist,
    item_json,
    list_watchlist,
    parse_since,
    remove_from_watchlist,
    watch_matches,
)
from search.web.errors import UploadTooLargeError, error_responses, scrub_paths
from search.web.media import IMAGE_TYPES, MAX_REF_CHARS, image_type

if TYPE_CHECKING:
    from indexer.service import Service
    from indexer.store.watchlist import WatchItem, WatchMatch

__all__ = ["MAX_MATCHES", "MAX_SHOWN", "WatchRequest", "add_watch_routes"]

MAX_MATCHES = 1000  # the most matches one request answers
MAX_SHOWN = 50  # the most latest matches answered with each watched item
MAX_SINCE_CHARS = 64
_JSON = "application/json"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_SHA256 = r"^[0-9a-f]{64}$"


class WatchRequest(BaseModel):
    """What ``POST /api/watch`` takes (besides an uploaded ``image``)."""

    model_config = ConfigDict(extra="forbid")
    video: str | None = Field(None, min_length=1, max_length=MAX_REF_CHARS,
                              description="A video id or YouTube URL")
    threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="The cosine at or above which a new video is a "
                                          f"re-upload (default {DEFAULT_THRESHOLD})")
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME,
                             description="The item's name (default: the video id or the "
                                         "image's file name)")


def _request_body() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /api/watch``: JSON, a form, or an upload."""
    fields = WatchRequest.model_json_schema()
    fields.pop("title", None)
    plain = {**fields, "required": ["video"]}
    upload = {**fields, "properties": {
        **fields["properties"],
        "image": {"type": "string", "format": "binary",
                  "description": "An image to watch instead of a video"}}}
    return {"required": True, "content": {
        _JSON: {"schema": plain},
        _FORMS[0]: {"schema": plain},
        _FORMS[1]: {"schema": upload}}}


def _upload_name(filename: str | None) -> str:
    """The client's file name without its folders, printable, cut short."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:min(QUOTE_LIMIT, MAX_NAME)] or "upload"


async def _read_request(request: Request, limit: int
                        ) -> tuple[WatchRequest, tuple[str, bytes] | None]:
    """The fields of an add, from a JSON body or a form; an uploaded image with its name."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    upload: tuple[str, bytes] | None = None
    try:
        if kind == _JSON:
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                raise InputError("the body is not JSON") from None
            if not isinstance(body, dict):
                raise UsageError("the body is a JSON object: {\"video\": ID_OR_URL}")
            fields = WatchRequest.model_validate(body, strict=True)
        elif kind in _FORMS:
            values: dict[str, str] = {}
            async with request.form(max_files=1, max_fields=4) as form:  # closes the upload
                for key, value in form.multi_items():
                    if key in values or (key == "image" and upload is not None):
                        raise UsageError(f"{key}: given twice")
                    if key == "image" and isinstance(value, UploadFile):
                        data = await value.read(limit + 1)
                        if len(data) > limit:
                            raise UploadTooLargeError(
                                f"the upload is larger than {limit} bytes")
                        upload = (_upload_name(value.filename), data)
                    elif isinstance(value, str):
                        values[key] = value
                    else:
                        raise UsageError(f"{key}: a text field, not a file")
            fields = WatchRequest.model_validate(values)
        else:
            raise UsageError("send the fields as JSON (Content-Type: application/json) or "
                             "as a form")
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise UsageError("; ".join(problems)) from None
    if (fields.video is None) == (upload is None):
        raise UsageError("name one video (video: an id or YouTube URL) or upload one image")
    return fields, upload


def add_watch_routes(app: FastAPI, service: Callable[[], Service]) -> None:
    """Add the watchlist's routes to ``app``, over its service (``service()`` builds it)."""

    def shown_as(built: Service, item: WatchItem) -> dict[str, Any]:
        """The item's thumbnail address, and its video's title when the corpus has it."""
        video = built.store.get_video(item.video_id) if item.video_id is not None else None
        thumbnail = (f"/thumbs/{item.video_id}" if video is not None else
                     f"/thumbs/watched/{item.thumbnail_sha256}" if item.thumbnail_sha256 else
                     None)
        return {"thumbnail": thumbnail, "title": video.title if video else "",
                "channel_title": video.channel_title if video else ""}

    def match_json(match: WatchMatch) -> dict[str, Any]:
        data = match.to_json()
        if not data["thumbnail_url"].startswith(("https://", "http://")):
            data["thumbnail_url"] = ""  # a local file's: where the server keeps it
        data.update(strength=strength(match.score), thumbnail=f"/thumbs/{match.video_id}",
                    youtube_url=youtube_url(match.video_id))
        return data

    def item_answer(built: Service, item: WatchItem,
                    latest: list[WatchMatch]) -> dict[str, Any]:
        data = item_json(item)
        data.update(source=scrub_paths(item.source, built.settings.home),
                    **shown_as(built, item),
                    youtube_url=youtube_url(item.video_id) if item.video_id else None,
                    latest_matches=[match_json(m) for m in latest])
        return data

    @app.get("/api/watch", summary="The watched items, with their latest matches",
                responses=error_responses(400, 422, 500))
    def watched(matches: Annotated[int, Query(ge=0, le=MAX_SHOWN)] = 6) -> dict[str, Any]:
        """Every watched item (oldest first): its threshold, how many re-uploads were found
        and when the latest was, and its ``matches`` latest ones, newest first (each with
        its score's strength), as ``thumbsearch watch list``."""
        built = service()
        items = list_watchlist(built)
        return {"default_threshold": DEFAULT_THRESHOLD, "items": [
            item_answer(built, item, watch_matches(built, names=[item.name], limit=matches)
                        if matches and item.matches else []) for item in items]}

    @app.post("/api/watch", summary="Watch a video or an uploaded image",
                 status_code=201, openapi_extra={"requestBody": _request_body()},
                 responses={201: {"description": "The item added and the stored videos "
                                                 "that already match it"},
                            **error_responses(400, 403, 404, 413, 422, 500)})
    async def add(request: Request) -> dict[str, Any]:
        """Watch a video (``video``: an id or YouTube URL; one not in the corpus is watched
        by its thumbnail, fetched within THUMBSEARCH_WEB_FETCH_TIMEOUT) or an uploaded
        ``image`` (multipart), with an optional ``threshold`` and ``name``; the corpus is
        searched once and the videos that already match are recorded and answered. The
        fields come as JSON or as a form; a page on another site may not send them (403),
        as for every write."""
        built = await run_in_threadpool(service)
        fields, upload = await _read_request(request, built.settings.max_image_bytes)

        def write() -> dict[str, Any]:
            try:
                (added,) = add_to_watchlist(
                    built, [fields.video] if fields.video is not None else [],
                    threshold=fields.threshold, name=fields.name,
                    uploads=[upload] if upload is not None else [])
            except (FetchError, VideoNotFoundError) as exc:
                if isinstance(exc, VideoNotFoundError) and not isinstance(
                        exc.__cause__, FetchError):
                    raise
                raise VideoNotFoundError(
                    f"{fields.video} is not in the corpus and no thumbnail could be fetched"
                ) from exc
            data = item_answer(built, added.item, added.matches)
            data.update(matches_total=len(added.matches), more_may_match=added.more,
                        latest_match_at=added.matches[0].found_at.isoformat()
                        if added.matches else None)
            return data

        return await run_in_threadpool(write)

    @app.get("/api/watch/matches", summary="The re-uploads found, newest first",
                responses=error_responses(400, 404, 422, 500))
    def matches(since: Annotated[str | None, Query(min_length=1,
                                                   max_length=MAX_SINCE_CHARS)] = None,
                name: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME)] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_MATCHES)] = 100) -> dict[str, Any]:
        """The matches found since ``since`` (an age: 30m, 12h, 1d, 2w, or an ISO date or
        time) of the item ``name`` (404 when nothing is watched by that name), newest first,
        at most ``limit``; as ``thumbsearch watch matches``."""
        moment = parse_since(since) if since is not None else None
        found = watch_matches(service(), since=moment, names=[name] if name else (),
                              limit=limit)
        return {"since": moment.isoformat() if moment else None, "name": name,
                "matches": [match_json(m) for m in found]}

    @app.delete("/api/watch/{name:path}", summary="Stop watching an item",
                   responses=error_responses(400, 403, 404, 422, 500))
    def remove(name: Annotated[str, Path(min_length=1, max_length=MAX_NAME)]
               ) -> dict[str, Any]:
        """Stop watching the item ``name``; its recorded matches go with it (404 when
        nothing is watched by that name)."""
        dropped = remove_from_watchlist(service(), [name])
        return {"removed": name, "matches_removed": dropped}

    @app.get("/thumbs/watched/{sha256}", summary="A watched item's thumbnail",
                response_class=Response, responses={
                    200: {"description": "The thumbnail from the local cache",
                          "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                      for t in IMAGE_TYPES}},
                    **error_responses(400, 404, 422, 500)})
    def watched_thumbnail(sha256: Annotated[str, Path(pattern=_SHA256)]) -> Response:
        """The thumbnail a watched item was embedded from (an uploaded image, or a video's
        that is not in the corpus), by its SHA-256 as ``GET /api/watch`` names it."""
        built = service()
        if not any(item.thumbnail_sha256 == sha256 for item in list_watchlist(built)):
            raise NotFoundError("no watched item has that thumbnail")
        data = built.cache.get(sha256)
        if data is None:
            raise NotFoundError("that thumbnail is no longer in the cache")
        return Response(data, media_type=image_type(data),
                        headers={"Cache-Control": "max-age=86400"})
