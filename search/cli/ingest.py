"""``thumbsearch ingest``: search YouTube and ingest the thumbnails found."""

from __future__ import annotations

from typing import Annotated

import typer

from indexer.ingest import MAX_PAGES, ingest_queries
from indexer.service import build_service
from search.cli.output import finish_ingest

__all__ = ["ingest", "register"]


def ingest(
    ctx: typer.Context,
    queries: Annotated[list[str], typer.Argument(help="Search queries, e.g. 'cat videos'.")],
    pages: Annotated[int, typer.Option(min=1, max=MAX_PAGES,
                                       help="Result pages to read per query.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=50, help="Results per page.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Search YouTube (search.list, type=video) and embed the thumbnails of new videos.

    Needs YOUTUBE_API_KEY. Each page costs one search.list call; videos already
    stored are linked to the query but not downloaded again. Exit 3 when the
    day's quota is spent (what was fetched is kept).
    """
    service = build_service(ctx.obj)
    try:
        summary = ingest_queries(service, queries, pages=pages, per_page=per_page)
    finally:
        service.close()
    finish_ingest(summary, as_json)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(ingest)
