"""``thumbsearch refresh``: re-fetch old API data, prune videos YouTube no longer has."""

from __future__ import annotations

from typing import Annotated

import typer

from search.cli.ingest import WAIT_HELP
from search.cli.numbers import MAX_WAIT, finite
from search.cli.output import echo_json
from search.cli.progress import progress_reporter

__all__ = ["refresh", "register"]


def refresh(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(
        help="Refresh videos whose API data is older than this (e.g. 30d, 12h).")] = "30d",
    prune: Annotated[bool, typer.Option(
        "--prune", help="Delete videos YouTube no longer has, with their vectors.")] = False,
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Re-fetch the metadata of old videos (videos.list, 50 ids a call) to honour YouTube's terms.

    Stored API data must be refreshed or deleted within 30 days: run this daily
    (e.g. with --prune from cron). Exit 3 when the day's quota is spent; the next
    run continues with the rows still old.
    """
    from indexer.enrich import refresh_videos
    from indexer.queryfile import parse_duration
    from indexer.service import build_service

    age = parse_duration(older_than, "--older-than")
    service = build_service(ctx.obj)
    try:
        with progress_reporter(enabled=not as_json) as progress:
            summary = refresh_videos(service, age, prune=prune, wait=wait, progress=progress)
    finally:
        service.close()
    if as_json:
        echo_json({"refreshed": summary.refreshed, "gone": summary.gone,
                   "pruned": summary.pruned, "api_calls": {"videos": summary.videos_calls}})
    else:
        typer.echo(f"refreshed {summary.refreshed}, gone {len(summary.gone)}, pruned "
                   f"{summary.pruned}, API calls: videos.list {summary.videos_calls}")
        if summary.gone and not prune:
            typer.echo(f"  {len(summary.gone)} video(s) are gone from YouTube: run "
                       "`thumbsearch refresh --prune` to delete them")
    if summary.stopped:
        typer.echo(f"stopped: {summary.stopped}", err=True)
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(refresh)
