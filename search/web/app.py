"""The FastAPI app: a JSON API over the query side, and a plain HTML/JS page on top of it.

Errors are answered as JSON ``{"error": message}`` with a status code chosen from the
exception tree; no stack trace ever reaches a client. Nothing heavy is imported at start:
the model loads on the first image upload or unknown video id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from indexer.bounds import quote
from indexer.errors import (
    EmptyCorpusError,
    FetchError,
    HostNotAllowedError,
    ImageDecodeError,
    InputError,
    NotFoundError,
    ThumbsearchError,
    VideoIdError,
)
from indexer.service import Service
from search.duplicates import DEFAULT_THRESHOLD, find_duplicates
from search.gallery import cached_thumbnail, youtube_url
from search.ids import parse_video_ref
from search.neighbours import MAX_K, SimilarResult, similar_to_bytes, similar_to_video
from search.stats import corpus_stats

__all__ = ["PAGE_SIZE", "UploadTooLargeError", "create_app", "status_for"]

PAGE_SIZE = 24
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


class UploadTooLargeError(InputError):
    """An uploaded image larger than the configured limit."""


def status_for(exc: ThumbsearchError) -> int:
    """The HTTP status code that answers an error."""
    if isinstance(exc, UploadTooLargeError):
        return 413
    if isinstance(exc, VideoIdError | ImageDecodeError | HostNotAllowedError | InputError):
        return 400
    if isinstance(exc, EmptyCorpusError | NotFoundError):
        return 404
    if isinstance(exc, FetchError):
        return 502
    return 500


def _static(name: str) -> str:
    return (resources.files("search.web") / "static" / name).read_text("utf-8")


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "image/jpeg"


def create_app(service_factory: Callable[[], Service]) -> FastAPI:
    """The web app; ``service_factory`` (e.g. ``lambda: build_service(settings)``) runs once."""
    app = FastAPI(title="thumbsearch", version="1", docs_url=None, redoc_url=None,
                  description="Find YouTube videos whose thumbnails look alike.")
    lock = threading.RLock()  # one request at a time touches the service (SQLite, the model)
    holder: dict[str, Service] = {}

    def service() -> Service:
        with lock:
            if "service" not in holder:
                holder["service"] = service_factory()
            return holder["service"]

    @app.exception_handler(ThumbsearchError)
    async def _our_error(_request: Request, exc: ThumbsearchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems) or "invalid request"},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"},
                            status_code=500)

    def shaped(result: SimilarResult) -> dict[str, Any]:
        data = result.to_json()
        for item in data["results"]:
            item["thumbnail"] = f"/thumbs/{item['video_id']}"
            item["youtube_url"] = youtube_url(item["video_id"])
        query_id = result.query.get("video_id")
        if query_id is not None:
            video = service().store.get_video(query_id)
            data["query"].update({
                "title": video.title if video else "",
                "channel_title": video.channel_title if video else "",
                "thumbnail": f"/thumbs/{query_id}" if video else None,
                "youtube_url": youtube_url(query_id)})
        return data

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise NotFoundError(f"no static file {quote(name)}")
        return Response(_static(name), media_type=_STATIC[name])

    @app.get("/api/similar/{video_ref:path}", summary="Neighbours of a video id or URL")
    def similar_video(video_ref: str,
                      k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> dict[str, Any]:
        """Top-k stored videos whose thumbnails look most like the video's."""
        video_id = parse_video_ref(video_ref)
        with lock:
            return shaped(similar_to_video(service(), video_id, k))

    @app.post("/api/similar", summary="Neighbours of an uploaded image")
    def similar_upload(image: Annotated[UploadFile, File()],
                       k: Annotated[int, Form(ge=1, le=MAX_K)] = 10) -> dict[str, Any]:
        """Top-k stored videos whose thumbnails look most like the uploaded image."""
        limit = service().settings.max_image_bytes
        data = image.file.read(limit + 1)
        if len(data) > limit:
            raise UploadTooLargeError(f"the upload is larger than {limit} bytes")
        name = image.filename or "upload"
        with lock:
            return shaped(similar_to_bytes(service(), data, name, k))

    @app.get("/api/videos", summary="Browse the corpus, optionally by ingest query")
    def videos(query: str | None = None, page: Annotated[int, Query(ge=1)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> dict[str, Any]:
        """One page of stored videos (newest first) and the ingest queries to filter by."""
        with lock:
            store = service().store
            if not store.exists():
                return {"query": query, "page": page, "pages": 0, "total": 0,
                        "queries": [], "videos": []}
            total, ids = store.page_of_videos(query or None, (page - 1) * per_page, per_page)
            stored = store.get_videos(ids)
            listed = [stored[i] for i in ids if i in stored]
            return {
                "query": query, "page": page, "pages": (total + per_page - 1) // per_page,
                "total": total,
                "queries": [{"text": t, "videos": n} for t, n in store.query_counts()],
                "videos": [{"video_id": v.video_id, "title": v.title,
                            "channel_title": v.channel_title,
                            "published_at": v.published_at.isoformat() if v.published_at
                            else None, "thumbnail": f"/thumbs/{v.video_id}",
                            "youtube_url": youtube_url(v.video_id)} for v in listed]}

    @app.get("/api/stats", summary="Corpus statistics")
    def stats() -> dict[str, Any]:
        """Counts, model, index and quota, as ``thumbsearch stats --json``."""
        with lock:
            return corpus_stats(service())

    @app.get("/api/duplicates", summary="Groups of near-identical thumbnails")
    def duplicates(threshold: Annotated[float, Query(ge=-1.0, le=1.0)] = DEFAULT_THRESHOLD,
                   across_channels: bool = False) -> dict[str, Any]:
        """Connected components of the similarity graph above the threshold, largest first."""
        with lock:
            groups = find_duplicates(service(), threshold, across_channels=across_channels)
        out = []
        for group in groups:
            shaped_group = group.to_json()
            for item in shaped_group["videos"]:
                item["thumbnail"] = f"/thumbs/{item['video_id']}"
                item["youtube_url"] = youtube_url(item["video_id"])
            out.append(shaped_group)
        return {"threshold": threshold, "across_channels": across_channels, "groups": out}

    @app.get("/thumbs/{video_id}", summary="A stored video's thumbnail")
    def thumbnail(video_id: str) -> Response:
        """The thumbnail from the local cache, else a redirect to its http(s) URL."""
        with lock:
            video = service().store.get_video(video_id) if service().store.exists() else None
            data = cached_thumbnail(service(), video)
        if data is not None:
            return Response(data, media_type=_image_type(data),
                            headers={"Cache-Control": "max-age=86400"})
        if video is not None and video.thumbnail_url.startswith(("https://", "http://")):
            return RedirectResponse(video.thumbnail_url)
        raise NotFoundError(f"no thumbnail for {quote(video_id)}")

    return app
