"""``thumbsearch add-ids``: ingest the thumbnails of listed video ids, then their details."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.ingest import WAIT_HELP
from search.cli.output import echo_json, exit_if_stopped
from search.cli.progress import progress_reporter

if TYPE_CHECKING:
    from indexer.idlist_ingest import IdListSummary
    from search.idlist import ListedId

__all__ = ["add_ids", "register"]

SHOWN_BAD_LINES = 3  # invalid lines named in the warning


def _warn_invalid(source: str, bad: list[ListedId], total: int) -> None:
    shown = "; ".join(f"line {e.line}: {e.text!r}" for e in bad[:SHOWN_BAD_LINES])
    more = f"; and {len(bad) - SHOWN_BAD_LINES} more" if len(bad) > SHOWN_BAD_LINES else ""
    typer.echo(f"warning: skipped {len(bad)} of {total} entries of {source} that hold no "
               f"YouTube video id ({shown}{more})", err=True)


def _print(summary: IdListSummary, invalid: int) -> None:
    run = summary.run
    typer.echo(f"ids {summary.ids} ({invalid} invalid skipped): new videos {run.new}, "
               f"already known {run.known}, gone {len(summary.gone)} "
               f"(and {summary.already_gone} gone before), failed {len(run.failed)}, "
               f"details {run.enriched} ({summary.unenriched} waiting), "
               f"API calls: videos.list {run.videos_calls}")
    for gone in summary.gone:
        typer.echo(f"  gone {gone.video_id}: {gone.reason}")
    for failure in run.failed:
        typer.echo(f"  failed {failure.video_id}: {failure.reason}")


def add_ids(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(
        metavar="FILE",
        help="Video ids or YouTube URLs, one a line ('#' comment lines and blank lines "
             "skipped; '-' reads stdin), or a CSV file.", show_default=False)],
    column: Annotated[str | None, typer.Option(
        "--column", metavar="NAME",
        help="Read FILE as CSV with a header row and take the ids from this column. A .csv "
             "FILE without --column is read by its first column.")] = None,
    details: Annotated[bool, typer.Option(
        "--details/--no-details",
        help="Fetch titles, channels and statistics with videos.list (needs "
             "YOUTUBE_API_KEY). --no-details stores thumbnails only; a later run with "
             "details adds them.")] = True,
    wait: Annotated[float, typer.Option(min=0, help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Embed the thumbnails of listed YouTube videos, then fetch their details.

    Each id's mqdefault thumbnail is downloaded from the thumbnail host (no API quota)
    and embedded; ids already stored, or recorded as gone, are not downloaded again, so
    an interrupted run is resumed by running it again. Details come from videos.list,
    50 ids a call (1 unit), within the day's quota; stored videos still without
    details are enriched first. A thumbnail that answers 404, or an id videos.list
    does not return, is recorded as gone. Lines holding no video id are skipped with
    a warning. Exit 3 when the day's quota stopped the details (every thumbnail is
    still stored; the next run fetches the rest).
    """
    from search.idlist import read_id_list, youtube_ids

    listed = read_id_list(file, column=column, as_csv=file.lower().endswith(".csv"))
    ids, bad = youtube_ids(listed, file)
    if bad:
        _warn_invalid(file, bad, len(listed))
    from indexer.idlist_ingest import add_video_ids
    from indexer.service import build_service

    service = build_service(ctx.obj)
    try:
        with progress_reporter(enabled=not as_json) as progress:
            summary = add_video_ids(service, ids, details=details, wait=wait,
                                    progress=progress, label=file)
    finally:
        service.close()
    if as_json:
        echo_json({"invalid": len(bad), **summary.to_json()})
    else:
        _print(summary, len(bad))
    exit_if_stopped(summary.stopped)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("add-ids")(add_ids)
