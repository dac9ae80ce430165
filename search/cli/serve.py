"""``thumbsearch serve``: the web page and JSON API on loopback."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from indexer.errors import InputError

__all__ = ["is_loopback", "register", "serve"]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(
        "--host", help="Address to bind; anything but loopback needs --allow-remote.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote",
        help="Allow binding a non-loopback address. The app has no authentication: anyone "
             "who reaches the port can search, browse the corpus and upload images.")] = False,
) -> None:
    """Serve the search page and JSON API (OpenAPI schema at /openapi.json).

    Binds to 127.0.0.1 unless told otherwise. Ctrl-C stops it.
    """
    if not is_loopback(host) and not allow_remote:
        raise InputError(f"refusing to bind {host}: the app has no authentication; "
                         "pass --allow-remote to expose it beyond this machine")
    import uvicorn

    from indexer.service import build_service
    from search.web import create_app

    settings = ctx.obj
    app = create_app(lambda: build_service(settings))
    typer.echo(f"thumbsearch serving http://{host}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(serve)
