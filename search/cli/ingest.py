"""``thumbsearch ingest``: search YouTube and ingest the thumbnails found."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indexer.youtube.queryfile import MAX_PAGES
from search.cli.helptext import examples
from search.cli.numbers import MAX_WAIT, finite
from search.cli.onmatch import OnMatchOption, OnMatchTimeoutOption, run_on_match_command
from search.cli.output import finish_ingest
from search.cli.progress import progress_reporter

__all__ = ["WAIT_HELP", "ingest", "register"]

WAIT_HELP = ("Seconds to wait for another ingest run to finish (default 0: exit 1 at once "
             "if one holds the lock).")


def ingest(
    ctx: typer.Context,
    queries: Annotated[list[str] | None, typer.Argument(
        help="Search queries, e.g. 'cat videos'.", show_default=False)] = None,
    queries_file: Annotated[Path | None, typer.Option(
        "--queries-file", metavar="FILE",
        help="A TOML file of [[queries]] tables (q, pages, per_page, order, region_code, "
             "relevance_language, published_after/published_within, safe_search, priority): "
             "run once, resuming each query where the last run stopped.")] = None,
    pages: Annotated[int, typer.Option(min=1, max=MAX_PAGES,
                                       help="Result pages to read per query.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=50, help="Results per page.")] = 50,
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    on_match: OnMatchOption = None,
    on_match_timeout: OnMatchTimeoutOption = 60.0,
) -> None:
    """Search YouTube and embed the thumbnails of the new videos found.

    Uses search.list (type=video) and needs YOUTUBE_API_KEY. Each page costs one search.list
    call and each 50 new videos one videos.list call (for their details), charged to the
    day's quota before it is sent; videos already stored are linked to the query but not
    downloaded again. Exit 3 when the day's quota is spent (what was fetched is kept;
    with --queries-file the next run resumes each query where it stopped). With
    --on-match, a run that found re-uploads of watched items runs the command with them.
    """
    if (queries_file is None) == (not queries):
        raise typer.BadParameter("give search queries or --queries-file FILE (not both)")
    from indexer.ingest.queries import ingest_queries, run_queries
    from indexer.service import build_service
    from indexer.youtube.queryfile import load_queries_file

    specs = None
    if queries_file is not None:  # a bad file is refused before the home is opened
        specs = load_queries_file(queries_file, pages=pages, per_page=per_page,
                                  max_bytes=ctx.obj.max_queries_file_bytes)
    with progress_reporter(as_json) as progress, \
            build_service(ctx.obj, progress=progress) as service:
        if specs is not None:
            summary = run_queries(service, specs, resume=True, wait=wait,
                                  progress=progress)
        else:
            summary = ingest_queries(service, queries or [], pages=pages,
                                     per_page=per_page, wait=wait, progress=progress)
        run_on_match_command(service, summary, on_match, on_match_timeout)
    finish_ingest(summary, as_json)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch ingest 'cat videos' 'dog videos' --pages 2",
        "thumbsearch ingest --queries-file queries.toml",
    ))(ingest)
