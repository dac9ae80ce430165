"""The FastAPI app: a JSON API over the query side, and a plain HTML/JS page on top of it."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import ExitStack, asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match

from indexer.bounds import QUOTE_LIMIT, quote
from indexer.errors import FetchError, NotFoundError, ThumbsearchError, VideoNotFoundError
from indexer.service import Service, build_service, image_fetcher
from indexer.settings import Settings
from search.duplicates import DEFAULT_THRESHOLD, find_duplicates
from search.gallery import cached_thumbnail, youtube_url
from search.ids import parse_video_ref
from search.neighbours import MAX_K, SimilarResult, similar_to_bytes, similar_to_video
from search.rerank import MAX_TEXT as MAX_RERANK_CHARS
from search.rerank import NO_RERANK, Rerank, parse_rerank
from search.stats import corpus_stats
from search.strength import strength
from search.web.errors import (
    UploadTooLargeError,
    error_responses,
    public_stats,
    scrub_paths,
    status_for,
)
from search.web.guard import BODY_OVERHEAD, Guard, host_names
from search.web.media import IMAGE_TYPES, MAX_REF_CHARS, image_type
from search.web.watchlist import add_watch_routes

if TYPE_CHECKING:
    from indexer.models import Embedder
    from indexer.store.metadata import Store

__all__ = [
    "IMAGE_TYPES",
    "MAX_PAGE",
    "MAX_QUERY_CHARS",
    "MAX_REF_CHARS",
    "MAX_VIDEO_ID_CHARS",
    "PAGE_SIZE",
    "UploadTooLargeError",
    "create_app",
    "host_names",
    "status_for",
    "web_service",
]

PAGE_SIZE = 24
MAX_PAGE = 1_000_000_000  # (page - 1) * per_page stays far inside a 64-bit OFFSET
MAX_QUERY_CHARS = 1000
MAX_VIDEO_ID_CHARS = 64  # the videos.video_id column
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


def _static(name: str) -> str:
    return (resources.files("search.web") / "static" / name).read_text("utf-8")


def _upload_name(filename: str | None) -> str:
    """The client's file name without its folders, cut short (it only labels errors)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:QUOTE_LIMIT] or "upload"


def web_service(settings: Settings, *, embedder: Embedder | None = None) -> Service:
    """The service a server builds: an unknown video's thumbnail download ends within
    ``settings.web_fetch_timeout`` (THUMBSEARCH_WEB_FETCH_TIMEOUT), retries included, and
    lookups read a SQLite database through ``sqlite3``, as ``thumbsearch similar`` does
    (SQLAlchemy's per-call connection and row handling took most of a lookup's time)."""
    return build_service(settings, embedder=embedder, lookups_only=True,
                         fetcher=image_fetcher(settings, settings.web_fetch_timeout))


def _similar_to_video(service: Service, video_id: str, k: int,
                      rerank: Rerank = NO_RERANK) -> SimilarResult:
    """``similar_to_video``; a thumbnail that cannot be had (missing, slow past the
    deadline, unreachable) is an unknown video: NotFoundError (404), not a host error."""
    try:
        return similar_to_video(service, video_id, k, rerank)
    except (FetchError, VideoNotFoundError) as exc:
        if isinstance(exc, VideoNotFoundError) and not isinstance(exc.__cause__, FetchError):
            raise
        raise VideoNotFoundError(
            f"{video_id} is not in the corpus and no thumbnail could be fetched") from exc


def _videos_page(store: Store, query: str | None, page: int, per_page: int) -> dict[str, Any]:
    """One page of stored videos, newest first; a page past the end is the last one."""
    total, ids = store.page_of_videos(query or None, (page - 1) * per_page, per_page)
    pages = (total + per_page - 1) // per_page
    if pages and page > pages:
        page = pages
        total, ids = store.page_of_videos(query or None, (page - 1) * per_page, per_page)
    stored = store.get_videos(ids)
    listed = [stored[i] for i in ids if i in stored]
    return {
        "query": query, "page": page, "pages": pages, "total": total,
        "queries": [{"text": t, "videos": n} for t, n in store.query_counts()],
        "videos": [{"video_id": v.video_id, "title": v.title,
                    "channel_title": v.channel_title,
                    "published_at": v.published_at.isoformat() if v.published_at else None,
                    "thumbnail": f"/thumbs/{v.video_id}",
                    "youtube_url": youtube_url(v.video_id)} for v in listed]}


def create_app(service_factory: Callable[[], Service], *,
               allowed_hosts: Collection[str] | None = None,
               lookup_threads: int | None = None) -> FastAPI:
    """The web app; ``service_factory`` (e.g. ``lambda: build_service(settings)``) runs once,
    on the first request, and the service it builds is closed when the app shuts down.

    ``allowed_hosts``: the Host header values answered (``host_names(host, port)`` for a
    server on loopback); None answers any, for a server exposed on purpose.

    Errors are answered as JSON ``{"error": message}`` with a status code chosen from the
    exception tree (``search.web.errors``); no stack trace or server path ever reaches a
    client, and every status and media type a route can answer is in the OpenAPI schema.
    Nothing heavy is imported at start: the model loads on the first image upload or
    unknown video id.

    Requests run concurrently (FastAPI's thread pool): nothing here serialises them. What
    is shared and not thread-safe guards itself narrowly: the service is built once under
    ``building``; inside it each lazy part is built once, the index catches up with the
    database aside and swaps it in (``Service.require_corpus``) and the model runs one
    call at a time under its own lock; database reads take a connection per call.

    Lookups of stored videos, pure CPU work, run at most ``lookup_threads`` at a time
    (default: the number of CPUs); the others wait their turn. More at once only contend
    for the interpreter: at 16 connections on 2 cores, 2 at a time answered 1.6 times as
    many lookups as 16 at a time, with half the p99 (``python -m bench.serve``).
    An unknown video's download and embedding do not wait for them.
    """
    building = threading.Lock()  # guards building the service once (and closing it)
    lookups = threading.BoundedSemaphore(max(1, lookup_threads or os.cpu_count() or 1))
    holder: dict[str, Service] = {}
    limits: dict[str, int] = {}
    opened = ExitStack()

    def service() -> Service:
        built = holder.get("service")
        if built is None:
            with building:
                if "service" not in holder:
                    holder["service"] = opened.enter_context(service_factory())
                built = holder["service"]
        return built

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with building:
                holder.pop("service", None)
                opened.close()

    app = FastAPI(title="thumbsearch", version="1", docs_url=None, redoc_url=None,
                  description="Find YouTube videos whose thumbnails look alike.",
                  lifespan=lifespan)

    async def body_limit() -> int:
        if "body" not in limits:
            settings = (await run_in_threadpool(service)).settings
            limits["body"] = settings.max_image_bytes + BODY_OVERHEAD
        return limits["body"]

    app.add_middleware(Guard, allowed_hosts=allowed_hosts, body_limit=body_limit)

    def answer(status: int, message: str,
               headers: Mapping[str, str] | None = None) -> JSONResponse:
        built = holder.get("service")
        home = built.settings.home if built is not None else None
        return JSONResponse({"error": scrub_paths(message, home)}, status_code=status,
                            headers=headers)

    @app.exception_handler(ThumbsearchError)
    async def _our_error(_request: Request, exc: ThumbsearchError) -> JSONResponse:
        return answer(status_for(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()]
        return answer(422, "; ".join(problems) or "invalid request")

    def allowed_methods(scope: Mapping[str, Any]) -> str:
        """Every method the routes of this path take (Starlette names only the first's); a
        path a route names literally (``/api/watch/matches``) is that route's resource, not
        also one of a template's (``/api/watch/{name}``)."""
        routes = [r for r in app.router.routes
                  if isinstance(r, APIRoute) and r.matches(dict(scope))[0] != Match.NONE]
        literal = [r for r in routes if not r.param_convertors]
        return ", ".join(sorted({m for r in literal or routes for m in r.methods or ()}))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code < 400:  # not an error: keep Starlette's empty answer
            return Response(status_code=exc.status_code, headers=exc.headers)
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request.scope)}
        return answer(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, ThumbsearchError):  # raised outside the routes (the factory)
            return await _our_error(request, exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"},
                            status_code=500)

    def shaped(result: SimilarResult) -> dict[str, Any]:
        data = result.to_json()
        for item in data["results"]:
            item["strength"] = strength(item["score"])
            item["thumbnail"] = f"/thumbs/{item['video_id']}"
            item["youtube_url"] = youtube_url(item["video_id"])
        query_id = result.query.get("video_id")
        if query_id is not None:  # read as the lookup read its neighbours' titles
            video = service().require_corpus().reads.get_videos([query_id]).get(query_id)
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

    @app.get("/api/similar/{video_ref:path}", summary="Neighbours of a video id or URL",
             responses=error_responses(400, 404, 422, 500))
    def similar_video(
            video_ref: Annotated[str, Path(min_length=1, max_length=MAX_REF_CHARS)],
            k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
            rerank: Annotated[str, Query(max_length=MAX_RERANK_CHARS)] = "none",
    ) -> dict[str, Any]:
        """Top-k stored videos whose thumbnails look most like the video's (each with its
        score's strength: strong, a likely re-upload; medium, looks alike; or weak). A video
        not in the corpus is embedded from its thumbnail, fetched within
        THUMBSEARCH_WEB_FETCH_TIMEOUT; when none can be had the answer is 404. ``rerank``
        re-orders the answer (``aqe``, ``kr``, ``aqe+kr``; as ``similar --rerank``)."""
        options = parse_rerank(rerank)
        video_id = parse_video_ref(video_ref)
        built = service()
        if built.require_corpus().reads.get_vector(video_id, built.spec.model_id) is None:
            # a download: not in line
            return shaped(_similar_to_video(built, video_id, k, options))
        with lookups:
            found = _similar_to_video(built, video_id, k, options)
        return shaped(found)

    @app.post("/api/similar", summary="Neighbours of an uploaded image",
              responses=error_responses(400, 404, 413, 422, 500))
    def similar_upload(image: Annotated[UploadFile, File()],
                       k: Annotated[int, Form(ge=1, le=MAX_K)] = 10,
                       rerank: Annotated[str, Form(max_length=MAX_RERANK_CHARS)] = "none",
                       ) -> dict[str, Any]:
        """Top-k stored videos whose thumbnails look most like the uploaded image (each
        with its score's strength); ``rerank`` as for a video."""
        options = parse_rerank(rerank)
        limit = service().settings.max_image_bytes
        data = image.file.read(limit + 1)  # the whole body was bounded while it arrived
        if len(data) > limit:
            raise UploadTooLargeError(f"the upload is larger than {limit} bytes")
        return shaped(similar_to_bytes(service(), data, _upload_name(image.filename), k,
                                       options))

    @app.get("/api/videos", summary="Browse the corpus, optionally by ingest query",
             responses=error_responses(400, 422, 500))
    def videos(query: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)] = None,
               page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> dict[str, Any]:
        """One page of stored videos (newest first) and the ingest queries to filter by; a
        page past the end answers the last page (``page`` says which was answered)."""
        store = service().store
        if not store.exists():
            return {"query": query, "page": 1, "pages": 0, "total": 0,
                    "queries": [], "videos": []}
        return _videos_page(store, query, page, per_page)

    @app.get("/api/stats", summary="Corpus statistics", responses=error_responses(400, 500))
    def stats() -> dict[str, Any]:
        """Counts, model, index and quota, as ``thumbsearch stats --json``; files are
        named relative to the home, the home by its name."""
        built = service()
        return public_stats(corpus_stats(built), built.settings.home)

    @app.get("/api/duplicates", summary="Groups of near-identical thumbnails",
             responses=error_responses(400, 404, 422, 500))
    def duplicates(threshold: Annotated[float, Query(ge=-1.0, le=1.0)] = DEFAULT_THRESHOLD,
                   across_channels: bool = False) -> dict[str, Any]:
        """Connected components of the similarity graph above the threshold, largest first
        (each video's score with its strength)."""
        groups = find_duplicates(service(), threshold, across_channels=across_channels)
        out = []
        for group in groups:
            shaped_group = group.to_json()
            for item in shaped_group["videos"]:
                item["strength"] = strength(item["best_score"])
                item["thumbnail"] = f"/thumbs/{item['video_id']}"
                item["youtube_url"] = youtube_url(item["video_id"])
            out.append(shaped_group)
        return {"threshold": threshold, "across_channels": across_channels, "groups": out}

    @app.get("/thumbs/{video_id}", summary="A stored video's thumbnail",
             response_class=Response, responses={
                 200: {"description": "The thumbnail from the local cache",
                       "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                   for t in IMAGE_TYPES}},
                 307: {"description": "Not cached: a redirect to its http(s) URL",
                       "headers": {"Location": {"schema": {"type": "string"},
                                                "description": "The thumbnail URL"}}},
                 **error_responses(400, 404, 422, 500)})
    def thumbnail(
            video_id: Annotated[str, Path(max_length=MAX_VIDEO_ID_CHARS)]) -> Response:
        """The thumbnail from the local cache, else a redirect to its http(s) URL."""
        store = service().store
        video = store.get_video(video_id) if store.exists() else None
        data = cached_thumbnail(service(), video)
        if data is not None:
            return Response(data, media_type=image_type(data),
                            headers={"Cache-Control": "max-age=86400"})
        if video is not None and video.thumbnail_url.startswith(("https://", "http://")):
            return RedirectResponse(video.thumbnail_url)
        raise NotFoundError(f"no thumbnail for {quote(video_id)}")

    add_watch_routes(app, service)
    return app
