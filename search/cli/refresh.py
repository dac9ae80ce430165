"""``thumbsearch refresh``: re-fetch old API data, prune videos YouTube no longer has."""

from __future__ import annotations

from typing import Annotated

import typer

from search.cli.helptext import examples
from search.cli.ingest import WAIT_HELP
from search.cli.numbers import MAX_WAIT, finite
from search.cli.output import echo_json
from search.cli.progress import progress_reporter

__all__ = ["refresh", "register"]


_TITLE_LIMIT = 100


def _one_line(title: str) -> str:
    """A stored title as one printable line of at most _TITLE_LIMIT characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in title).split())
    return text if len(text) <= _TITLE_LIMIT else text[:_TITLE_LIMIT - 3] + "..."


def refresh(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(
        help="Refresh videos whose API data is older than this (e.g. 30d, 12h).")] = "30d",
    prune: Annotated[bool, typer.Option(
        "--prune", help="Delete videos YouTube has left out twice, in refreshes at least a "
                        "day apart, with their vectors.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="With --prune: list the videos that would be deleted (ids and "
                          "titles) and change nothing (no refresh, no marks, no deletes; the "
                          "videos.list calls are still made and charged). Without --prune it "
                          "is a usage error (exit 2).")] = False,
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Re-fetch old videos' details, as YouTube's terms require, and prune gone videos.

    Details come from videos.list, 50 ids a call. Stored API data must be refreshed or
    deleted within 30 days: run this daily (e.g. with --prune from cron). A video
    videos.list leaves out is first marked; --prune deletes it only when a refresh at
    least a day later finds it missing again, and a video that comes back is unmarked.
    An answer leaving out every id of a batch (2 or more) is suspect: nothing is marked
    or deleted from it, and the run says so. Exit 3 when the day's quota is spent; the
    next run continues with the rows still old.
    """
    from indexer.errors import UsageError
    from indexer.ingest.enrich import refresh_videos
    from indexer.service import build_service
    from indexer.youtube.queryfile import parse_duration

    if dry_run and not prune:
        raise UsageError("--dry-run lists what --prune would delete: use it with --prune")
    age = parse_duration(older_than, "--older-than")
    with progress_reporter(as_json) as progress, build_service(ctx.obj) as service:
        summary = refresh_videos(service, age, prune=prune, dry_run=dry_run, wait=wait,
                                 progress=progress)
    confirmed = [{"video_id": v, "title": t} for v, t in summary.confirmed.items()]
    if as_json:
        echo_json({"refreshed": summary.refreshed, "gone": summary.gone,
                   "marked": summary.marked, "unmarked": summary.unmarked,
                   "suspect_batches": summary.suspect_batches, "confirmed": confirmed,
                   "pruned": summary.pruned, "dry_run": dry_run,
                   "api_calls": {"videos": summary.videos_calls},
                   **({"nothing_to_do": summary.nothing_to_do} if summary.nothing_to_do
                      else {})})
    else:
        typer.echo(f"refreshed {summary.refreshed}, gone {len(summary.gone)} (newly marked "
                   f"{summary.marked}, unmarked {summary.unmarked}), pruned {summary.pruned}, "
                   f"suspect answers {summary.suspect_batches}, API calls: videos.list "
                   f"{summary.videos_calls}")
        if summary.nothing_to_do:
            typer.echo(f"nothing to do: {summary.nothing_to_do}")
        if summary.suspect_batches:
            typer.echo(f"  {summary.suspect_batches} videos.list answer(s) left out every id "
                       "asked for: suspect, nothing was marked or deleted from them (those "
                       "videos are asked again by the next refresh)")
        if dry_run:
            typer.echo(f"  dry run: would delete {len(confirmed)} video(s) (missing in two "
                       "answers a day apart); nothing was changed")
            for item in confirmed:
                typer.echo(f"    {item['video_id']}  {_one_line(item['title'])}")
        elif confirmed and not prune:
            typer.echo(f"  {len(confirmed)} video(s) are gone from YouTube (missing in two "
                       "answers a day apart): run `thumbsearch refresh --prune` to delete them")
    if summary.stopped:
        typer.echo(f"stopped: {summary.stopped}", err=True)
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch refresh",
        "thumbsearch refresh --prune --dry-run",
        "thumbsearch refresh --older-than 7d --prune",
    ))(refresh)
