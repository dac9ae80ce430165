"""``thumbsearch serve``: the web page and JSON API on loopback."""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Annotated

import typer

from indexer.bounds import quote
from indexer.errors import InputError, ThumbsearchError
from search.cli.helptext import examples

__all__ = ["bind", "is_loopback", "register", "serve"]

_HINTS = {
    errno.EADDRINUSE: "; another server holds that port: stop it or pick another --port",
    errno.EACCES: "; ports below 1024 need privileges: pick another --port",
    errno.EADDRNOTAVAIL: "; that address is not one of this machine's",
}


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``; InputError (exit 1) when it cannot be had.

    Bound here, before anything claims to serve, so a port in use or an address that is
    not this machine's is one error line instead of a "serving" line and a late failure.
    """
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    shown = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # connections whose socket says TCP, else each keep-alive answer waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As uvicorn does: a restart need not wait for the old connections' TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(2048)
    except (OSError, UnicodeError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        hint = ("; not an address, nor a name this machine resolves"
                if isinstance(exc, socket.gaierror)
                else _HINTS.get(getattr(exc, "errno", None) or 0, ""))
        raise InputError(f"cannot serve on {quote(shown)}: {reason[:1].lower()}{reason[1:]}"
                         f"{hint}") from None
    return sock


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(
        "--host", help="Address to bind; anything but loopback needs --allow-remote.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="TCP port (0: any free port, printed).")] = 8000,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote",
        help="Allow binding a non-loopback address and answer requests whatever Host "
             "header they carry. Without it only Host headers naming the bound address "
             "or localhost, 127.0.0.1, [::1] (with or without the port) are answered, "
             "others get 400: a page on another site cannot reach the API through DNS "
             "rebinding. The app has no authentication: anyone who reaches the port can "
             "search, browse the corpus and upload images.")] = False,
) -> None:
    """Serve the search page and JSON API (OpenAPI schema at /openapi.json).

    Binds to 127.0.0.1 unless told otherwise. Ctrl-C stops it. An address or port that
    cannot be bound is one error line and exit 1.
    """
    if not is_loopback(host) and not allow_remote:
        raise InputError(f"refusing to bind {quote(host)}: the app has no authentication; "
                         "pass --allow-remote to expose it beyond this machine")
    sock = bind(host, port)
    bound_port: int = sock.getsockname()[1]
    import uvicorn

    from search.web import create_app
    from search.web.app import web_service
    from search.web.guard import host_names

    settings = ctx.obj
    app = create_app(lambda: web_service(settings),
                     allowed_hosts=None if allow_remote else host_names(host, bound_port))
    config = uvicorn.Config(app, host=host, port=bound_port, log_level="warning",
                            access_log=False)
    shown = f"[{host.strip('[]')}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
    typer.echo(f"thumbsearch serving http://{shown}/ (Ctrl-C stops)", err=True)
    server = uvicorn.Server(config)
    with sock:
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: a clean stop
            return
    if not server.started and not server.should_exit:
        raise ThumbsearchError(f"the server on {shown} stopped before it started")


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch serve",
        "thumbsearch serve --port 0",
        "thumbsearch serve --host 0.0.0.0 --allow-remote",
    ))(serve)
