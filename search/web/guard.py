"""The ASGI layer in front of the app: the Host header check, the cross-site write check and
the request body limit."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Collection
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.bounds import quote

__all__ = ["BODY_OVERHEAD", "Guard", "cross_site", "host_names", "too_large"]

BODY_OVERHEAD = 64 * 1024  # multipart framing and the small form fields beside the image
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site: this page, or typed


def _host_form(host: str) -> str:
    """``host`` as it appears in a Host header (IPv6 literals in brackets), lower case."""
    bare = host.strip("[]").lower()
    try:
        if ipaddress.ip_address(bare).version == 6:
            return f"[{bare}]"
    except ValueError:
        pass
    return bare


def host_names(host: str, port: int) -> frozenset[str]:
    """The Host header values a server bound to ``host``:``port`` answers."""
    names = {_host_form(host), *_LOOPBACK_NAMES}
    return frozenset({*names, *(f"{name}:{port}" for name in names)})


def cross_site(headers: Headers) -> str | None:
    """Why a request that changes something comes from another site's page, or None.

    Browsers name the page a request comes from in ``Origin`` (every cross-origin POST and
    DELETE, "null" for a file or sandboxed page) and in ``Sec-Fetch-Site``: either naming
    an origin other than the one the request is addressed to (its Host) is refused, so a
    plain HTML form on another site cannot add or remove watched items. Clients that are
    not browsers (curl, scripts) send neither and are answered.
    """
    host = headers.get("host", "").lower()
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin.strip().lower())
        if parts.scheme not in ("http", "https") or parts.netloc != host:
            return f"the page at {quote(origin)}"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in _SAME_SITE_FETCHES:
        return f"a {quote(fetch_site)} page"
    return None


def too_large(limit: int) -> HTTPException:
    """The error of a body over ``limit`` bytes."""
    return HTTPException(413, f"the request body is larger than {limit} bytes "
                              "(THUMBSEARCH_MAX_IMAGE_BYTES plus form overhead)")


class Guard:
    """Refuses foreign Host headers (400), writes from another site's page (403,
    ``cross_site``) and bodies over the limit (413), as JSON errors.

    A page on another site can reach a loopback server through DNS rebinding (its own name
    made to resolve to 127.0.0.1); such requests carry that other name as Host, so only the
    names of the bound address and of loopback are answered. A request body is counted as
    it arrives and refused past the limit, and a declared Content-Length over it is refused
    before a byte of the body is read.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] | None,
                 body_limit: Callable[[], Awaitable[int]]) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else frozenset(
            h.lower() for h in allowed_hosts)
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.allowed is not None and host.lower() not in self.allowed:
            await JSONResponse({"error": f"Host header {quote(host)} does not name this "
                                         "server; start it with --allow-remote to answer "
                                         "other names"}, status_code=400)(scope, receive, send)
            return
        if scope["method"] not in _SAFE_METHODS:
            foreign = cross_site(headers)
            if foreign is not None:
                await JSONResponse({"error": f"{foreign} may not send {scope['method']} "
                                             "requests to this server: use its own page"},
                                   status_code=403)(scope, receive, send)
                return
        if scope["method"] != "POST":  # the only method whose body a route reads
            await self.app(scope, receive, send)
            return
        limit = await self.body_limit()
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            error = too_large(limit)
            await JSONResponse({"error": error.detail},
                               status_code=413)(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises a 413 HTTPException once more than ``limit`` bytes came."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return counted
