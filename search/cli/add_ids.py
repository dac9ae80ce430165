"""``thumbsearch add-ids``: ingest the thumbnails of listed video ids, then their details."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from indexer.bounds import quote
from indexer.ingest.cluster import LOCAL, is_ray_address
from search.cli.helptext import examples
from search.cli.ingest import WAIT_HELP
from search.cli.numbers import MAX_RAY_WORKERS, MAX_WAIT, finite
from search.cli.output import echo_json, exit_if_stopped, skipped_line
from search.cli.progress import progress_reporter

if TYPE_CHECKING:
    from indexer.ingest.idlist import IdListSummary
    from search.idlist import ListedId

__all__ = ["AddIdsCommand", "add_ids", "register", "split_ray_option"]

SHOWN_BAD_LINES = 3  # invalid lines named in the warning


def split_ray_option(args: list[str]) -> list[str]:
    """Give ``--ray`` its optional value: ``--ray ADDRESS`` becomes ``--ray=ADDRESS``, and a
    bare ``--ray`` ``--ray=local``.

    The word after ``--ray`` is its ADDRESS when it looks like one (HOST:PORT,
    ray://HOST:PORT, auto), and FILE when it is an existing path; another option or the
    end leaves ``--ray`` bare. Any other word is taken as an ADDRESS, which is then
    refused with a clear message rather than read as a second FILE.
    """
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            out.append(arg)
            out.extend(rest)
            break
        if arg != "--ray":
            out.append(arg)
            continue
        following = next(rest, None)
        if following is not None and (is_ray_address(following) or not (
                following.startswith("-") or Path(following).exists())):
            out.append(f"--ray={following}")
        else:
            out.append(f"--ray={LOCAL}")
            if following is not None:
                out.append(following)
    return out


class AddIdsCommand(TyperCommand):
    """The add-ids command, whose ``--ray`` takes an optional ADDRESS."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse as usual once ``--ray``'s value is made explicit."""
        parsed: list[str] = super().parse_args(ctx, split_ray_option(args))
        return parsed


def _ray_workers(ctx: typer.Context, _param: Any, value: int | None) -> int | None:
    if value is not None and ctx.params.get("ray") is None:
        raise typer.BadParameter("only goes with --ray")
    return value


def _warn_invalid(source: str, bad: list[ListedId], total: int) -> None:
    shown = "; ".join(f"line {e.line}: {quote(e.text)}" for e in bad[:SHOWN_BAD_LINES])
    more = f"; and {len(bad) - SHOWN_BAD_LINES} more" if len(bad) > SHOWN_BAD_LINES else ""
    typer.echo(f"warning: skipped {len(bad)} of {total} entries of {source} that hold no "
               f"YouTube video id ({shown}{more})", err=True)


def _print(summary: IdListSummary, invalid: int) -> None:
    run = summary.run
    typer.echo(f"ids {summary.ids} ({invalid} invalid skipped): new videos {run.new}, "
               f"already known {run.known}, gone {len(summary.gone)} "
               f"(and {summary.already_gone} gone before), failed {len(run.failed)}, "
               f"details {run.enriched} ({summary.unenriched} waiting), "
               f"API calls: videos.list {run.videos_calls}{run.matches_part()}")
    if summary.nothing_to_do:
        typer.echo(f"nothing to do: {summary.nothing_to_do}")
    for gone in summary.gone:
        typer.echo(f"  gone {gone.video_id}: {gone.reason}")
    for failure in run.failed:
        typer.echo(f"  failed {failure.video_id}: {failure.reason}")
    if run.skipped:
        typer.echo(skipped_line(run.skipped))


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
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS]", show_default=False, is_eager=True,
        help="Download and embed on Ray (pip install 'thumbsearch[ray]'): --ray alone starts "
             "a local Ray on this machine for the run; --ray ADDRESS connects to a running "
             "cluster (HOST:PORT of the head node, 6379 by default; ray://HOST:PORT; "
             "auto). The cluster's nodes need thumbsearch installed; only this process "
             "writes to the store.")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        "--ray-workers", metavar="N", min=1, max=MAX_RAY_WORKERS, callback=_ray_workers,
        help="Embedding actors with --ray, each loading the model once (default: half "
             "the cluster's CPUs, at least 1).")] = None,
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

    With --ray [ADDRESS] downloads and decoding run as Ray tasks and embedding in a
    pool of Ray actors; this process still chooses the ids, writes every row and the
    index, and fetches the details: what is stored is the same.
    """
    from search.idlist import read_id_list, youtube_ids

    listed = read_id_list(file, column=column, as_csv=file.lower().endswith(".csv"),
                          max_bytes=ctx.obj.max_ids_file_bytes)
    ids, bad = youtube_ids(listed, file)
    if bad:
        _warn_invalid(file, bad, len(listed))
    from indexer.service import build_service

    with progress_reporter(as_json) as progress, \
            build_service(ctx.obj, progress=progress) as service:
        if ray is None:
            from indexer.ingest.idlist import add_video_ids

            summary = add_video_ids(service, ids, details=details, wait=wait,
                                    progress=progress, label=file)
        else:
            from indexer.ingest.ray_backfill import RayOptions, add_video_ids_ray

            summary = add_video_ids_ray(service, ids, RayOptions(ray, ray_workers),
                                        details=details, wait=wait, progress=progress,
                                        label=file)
    if as_json:
        echo_json({"invalid": len(bad), **summary.to_json()})
    else:
        _print(summary, len(bad))
    exit_if_stopped(summary.stopped)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("add-ids", cls=AddIdsCommand, epilog=examples(
        "thumbsearch add-ids ids.txt",
        "thumbsearch add-ids videos.csv --column video_id --no-details",
        "thumbsearch duplicates --format ids | thumbsearch add-ids -",
        "thumbsearch add-ids ids.txt --ray head-node:6379 --ray-workers 8",
    ))(add_ids)
