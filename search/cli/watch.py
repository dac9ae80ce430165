"""``thumbsearch watch``: watch thumbnails and list the re-uploads found of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.formats import FormatOption, JsonOption, chosen_format
from search.cli.helptext import SummaryGroup, examples
from search.cli.numbers import finite
from search.cli.output import echo_json
from search.cli.tables import Column, echo_table, human_time

if TYPE_CHECKING:
    from search.watch import WatchAdded

__all__ = ["add", "list_items", "matches", "register", "remove", "watch_app"]

watch_app = typer.Typer(
    cls=SummaryGroup, name="watch", no_args_is_help=True, rich_markup_mode=None,
    help="Watch thumbnails: every run that stores videos reports their reuploads.\n\n"
         "A watched item is a video's thumbnail (its stored vector, or the thumbnail "
         "downloaded and embedded now) or an image, with a threshold: a new video scoring "
         "at or above it is recorded as a re-upload, once (`watch matches`, the matches "
         "column of `thumbsearch runs`, `schedule --on-match`).",
    epilog=examples("thumbsearch watch add dQw4w9WgXcQ", "thumbsearch watch matches --since 1d"))

_ITEM_COLUMNS = (Column("name", "id"), Column("kind", "id"), Column("threshold", "number"),
                 Column("matches", "number"), Column("latest match", "id"),
                 Column("source", "title"), Column("model", "id", piped_only=True))
_MATCH_COLUMNS = (Column("found", "id"), Column("watch", "id"), Column("score", "score"),
                  Column("video id", "id"), Column("title", "title", share=2),
                  Column("channel", "title"), Column("run", "number"),
                  Column("thumbnail", "text", piped_only=True))

ThresholdOption = Annotated[float | None, typer.Option(
    "--threshold", metavar="S", show_default=False, min=0.0, max=1.0,
    callback=finite,
    help="The cosine at or above which a new video is a re-upload (default: the measured "
         "re-upload threshold, docs/evaluation.md).")]


def _print_added(added: list[WatchAdded]) -> None:
    for entry in added:
        item = entry.item
        found = len(entry.matches)
        typer.echo(f"watching {item.name} ({item.kind} {item.source}, threshold "
                   f"{item.threshold:.2f}): {found} stored video{'s' if found != 1 else ''} "
                   f"already match{'es' if found == 1 else ''}"
                   + (" (the search stopped at its limit: there may be more)"
                      if entry.more else ""))
        for match in entry.matches:
            typer.echo(f"  {match.score:.4f}  {match.video_id}  {match.title}")


@watch_app.command("add", epilog=examples(
    "thumbsearch watch add dQw4w9WgXcQ",
    "thumbsearch watch add --image my-thumbnail.png --name launch-video --threshold 0.85"))
def add(
    ctx: typer.Context,
    videos: Annotated[list[str] | None, typer.Argument(
        metavar="VIDEO_ID_OR_URL...",
        help="Videos to watch: ids or YouTube URLs. A video not in the corpus is watched "
             "by its thumbnail, downloaded and embedded now.")] = None,
    images: Annotated[list[str] | None, typer.Option(
        "--image", metavar="PATH_OR_URL",
        help="Watch an image file or http(s) image URL (repeatable).")] = None,
    threshold: ThresholdOption = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Name the item (one item only; default: the video id or the image's "
                       "file name).")] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", metavar="FILE",
        help="A local weights file for the model (used when a thumbnail is embedded).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Watch videos' or images' thumbnails; the corpus is searched once for each.

    Every reference is read and embedded before anything is stored, so a bad id,
    file or URL adds nothing. The stored videos that already match are recorded
    and printed; from then on every ingest, add, add-ids, schedule batch and Ray
    backfill checks the videos it stores.
    """
    from indexer.service import FetcherOnFirstUse, build_service
    from search.cli.progress import progress_reporter
    from search.watch import add_to_watchlist

    settings = ctx.obj
    with progress_reporter(as_json) as progress, build_service(
            settings, weights=weights, fetcher=FetcherOnFirstUse(settings), lookups_only=True,
            progress=progress) as service:
        added = add_to_watchlist(service, videos or [], images or [], threshold=threshold,
                                 name=name)
    if as_json:
        echo_json([entry.to_json() for entry in added])
    else:
        _print_added(added)


@watch_app.command("list", epilog=examples("thumbsearch watch list",
                                           "thumbsearch watch list --json"))
def list_items(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """List the watched items: threshold, how many re-uploads were found, the latest."""
    from indexer.service import build_service
    from search.watch import item_json, list_watchlist, unchecked_items

    with build_service(ctx.obj) as service:
        items = list_watchlist(service)
        model = service.spec.model_id
        other = unchecked_items(service, items)
    if other:
        typer.echo(f"warning: {len(other)} watched item(s) ({', '.join(other[:3])}"
                   f"{', ...' if len(other) > 3 else ''}) were embedded with another model and "
                   f"are not checked by runs of {model}: remove and add them again",
                   err=True)
    if as_json:
        echo_json([item_json(item) for item in items])
    elif not items:
        typer.echo("nothing is watched yet: `thumbsearch watch add VIDEO_ID_OR_URL`")
    else:
        echo_table(_ITEM_COLUMNS, [
            (i.name, i.kind, f"{i.threshold:.2f}", i.matches,
             human_time(i.latest) if i.latest else None, i.source, i.model) for i in items])


@watch_app.command("remove", epilog=examples("thumbsearch watch remove dQw4w9WgXcQ"))
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(
        metavar="NAME...", help="Watched items to remove (`thumbsearch watch list`).")],
) -> None:
    """Stop watching items; their recorded matches go with them. All or nothing: an
    unknown name removes none."""
    from indexer.service import build_service
    from search.watch import remove_from_watchlist

    with build_service(ctx.obj) as service:
        dropped = remove_from_watchlist(service, names)
    typer.echo(f"removed {len(set(names))} watched item{'s' if len(set(names)) != 1 else ''} "
               f"and {dropped} recorded match{'es' if dropped != 1 else ''}")


@watch_app.command("matches", epilog=examples(
    "thumbsearch watch matches --since 1d", "thumbsearch watch matches --name launch-video",
    "thumbsearch watch matches --since 2026-12-01 --format json"))
def matches(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="AGE_OR_DATE",
        help="Only matches found since: an age (30m, 12h, 1d, 2w) or an ISO date/time.")] = None,
    names: Annotated[list[str] | None, typer.Option(
        "--name", metavar="NAME", help="Only this watched item's matches (repeatable).")] = None,
    run: Annotated[int | None, typer.Option(
        "--run", metavar="ID", min=1, max=2**31 - 1,
        help="Only the matches run ID found (`thumbsearch runs`).")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", min=1, max=1_000_000, help="At most this many, newest first.")] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the re-uploads found, newest first: which watched item, the video, its score,
    and the run that found it (- when `watch add` found it in the corpus)."""
    from indexer.service import build_service
    from search.watch import parse_since, watch_matches

    chosen = chosen_format(fmt, as_json)
    moment = parse_since(since) if since is not None else None
    with build_service(ctx.obj) as service:
        found = watch_matches(service, since=moment, names=names or (), run_id=run,
                              limit=limit)
    if chosen == "json":
        echo_json([m.to_json() for m in found])
    elif chosen == "ids":
        for video_id in dict.fromkeys(m.video_id for m in found):
            typer.echo(video_id)
    elif not found:
        typer.echo("no matches" + (" in that time" if since else ""))
    else:
        echo_table(_MATCH_COLUMNS, [
            (human_time(m.found_at), m.name, m.score, m.video_id, m.title, m.channel_title,
             m.run_id, m.thumbnail_url) for m in found])


def register(app: typer.Typer) -> None:
    """Add the ``watch`` command group to the root app."""
    app.add_typer(watch_app)
