"""``thumbsearch similar``: the nearest neighbours of a video or an image."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from indexer.models import model_spec
from indexer.service import build_service
from search.cli.output import echo_json
from search.ids import parse_video_ref
from search.neighbours import MAX_K, SimilarResult, similar_to_image, similar_to_video

__all__ = ["register", "similar"]


def _print_table(result: SimilarResult) -> None:
    if not result.results:
        typer.echo("no neighbours")
        return
    typer.echo(f"{'#':>3}  {'score':>6}  {'video id':<22}  {'title':<40}  {'channel':<20}  "
               "thumbnail")
    for r in result.results:
        title = r.title if len(r.title) <= 40 else r.title[:39] + "…"
        channel = r.channel_title if len(r.channel_title) <= 20 else r.channel_title[:19] + "…"
        typer.echo(f"{r.rank:>3}  {r.score:6.4f}  {r.video_id:<22}  {title:<40}  "
                   f"{channel:<20}  {r.thumbnail_url}")


def similar(
    ctx: typer.Context,
    video: Annotated[str | None, typer.Argument(
        metavar="VIDEO_ID_OR_URL",
        help="A video id or YouTube URL (watch?v=, youtu.be/, shorts/, embed/). "
             "An id starting with '-' goes after '--'.")] = None,
    image: Annotated[str | None, typer.Option(
        "--image", metavar="PATH_OR_URL",
        help="Search by an image file or http(s) image URL instead.")] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", help=f"Neighbours to return "
                                   f"(1..{MAX_K}).")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", help="Search this model's index (default THUMBSEARCH_MODEL); the corpus "
                        "must hold its vectors (`thumbsearch reembed --model M`).")] = None,
    weights: Annotated[Path | None, typer.Option(
        "--weights", metavar="FILE",
        help="A local weights file for the model (used when an image is embedded).")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE",
        help="Also write a self-contained HTML page: the query beside its neighbours, "
             "with titles, channels, scores and YouTube links.")] = None,
    sheet: Annotated[Path | None, typer.Option(
        "--sheet", metavar="FILE.png",
        help="Also write the same as one contact-sheet image (PNG, or JPEG by suffix).")] = None,
) -> None:
    """Show the k videos whose thumbnails look most like a video's or an image.

    A video not in the corpus is embedded on the fly from its mqdefault
    thumbnail (no API call, nothing stored). Scores are cosine similarities.
    """
    if (video is None) == (image is None):
        raise typer.BadParameter("give either VIDEO_ID_OR_URL or --image PATH_OR_URL")
    settings = ctx.obj if model is None else dataclasses.replace(
        ctx.obj, model=model_spec(model).model_id)
    service = build_service(settings, weights=weights)
    try:
        if image is not None:
            result = similar_to_image(service, image, k)
        else:
            result = similar_to_video(service, parse_video_ref(video or ""), k)
        if html is not None or sheet is not None:
            from search.gallery import write_html, write_sheet

            if html is not None:
                write_html(service, result, html)
            if sheet is not None:
                write_sheet(service, result, sheet)
    finally:
        service.close()
    if as_json:
        echo_json(result.to_json())
    else:
        _print_table(result)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(similar)
