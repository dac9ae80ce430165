"""``thumbsearch similar``: the nearest neighbours of a video, an image or a list of videos."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.formats import Format, FormatOption, JsonOption, chosen_format, wrote
from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.tables import Column, echo_table
from search.neighbours import MAX_K
from search.rerank import RERANK_HELP, parse_rerank

if TYPE_CHECKING:
    from search.idlist import ListedAnswer
    from search.neighbours import SimilarResult

__all__ = ["register", "similar"]


_COLUMNS = (Column("#", "number"), Column("score", "score"), Column("video id", "id"),
            Column("title", "title", share=3), Column("channel", "title"),
            Column("thumbnail", "text", piped_only=True))


def _print_table(result: SimilarResult) -> None:
    if not result.results:
        typer.echo("no neighbours")
        return
    echo_table(_COLUMNS, [(r.rank, r.score, r.video_id, r.title, r.channel_title,
                           r.thumbnail_url) for r in result.results])


def _print_listed(answers: list[ListedAnswer], fmt: Format) -> None:
    printed = 0
    for answer in answers:
        if fmt == "ids" and answer.result is None:  # stdout holds ids only
            typer.echo(f"line {answer.line}: {answer.error}: {answer.message}", err=True)
            continue
        if printed:
            typer.echo("")
        printed += 1
        if answer.result is None:
            typer.echo(f"line {answer.line}: {answer.error}: {answer.message}")
        elif fmt == "ids":
            typer.echo("\n".join(r.video_id for r in answer.result.results))
        else:
            typer.echo(f"line {answer.line}: {answer.video_id}")
            _print_table(answer.result)
    found = sum(a.result is not None for a in answers)
    missing = sum(a.error == "not_found" for a in answers)
    typer.echo(f"answered {found}, not in the corpus {missing}, "
               f"bad lines {len(answers) - found - missing}", err=True)


def similar(
    ctx: typer.Context,
    video: Annotated[str | None, typer.Argument(
        metavar="VIDEO_ID_OR_URL",
        help="A video id or YouTube URL (watch?v=, youtu.be/, shorts/, embed/). "
             "An id starting with '-' goes after '--'.")] = None,
    image: Annotated[str | None, typer.Option(
        "--image", metavar="PATH_OR_URL",
        help="Search by an image file or http(s) image URL instead.")] = None,
    ids_file: Annotated[str | None, typer.Option(
        "--ids-file", metavar="FILE",
        help="Answer many stored videos at once: a UTF-8 file of video ids or YouTube URLs, "
             "one a line ('#' comment lines and blank lines skipped; '-' reads stdin). "
             "Videos not in the corpus are reported as not found, not embedded.")] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, max=MAX_K,
                                   help="Neighbours to return.")] = 10,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
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
    rerank: Annotated[str, typer.Option(
        "--rerank", metavar="SPEC",
        help=f"Re-rank the answer: {RERANK_HELP}. Scores stay cosines to the query.")] = "none",
) -> None:
    """Show the k videos whose thumbnails look most like a video's or an image.

    A video not in the corpus is embedded on the fly from its mqdefault
    thumbnail (no API call, nothing stored). Scores are cosine similarities.

    With --ids-file, every listed video is answered in one batched search: one
    result per line, in file order (with --json a list of `similar --json`
    objects, each with its line number, or an "error" of "bad_id" or
    "not_found" and a message). A batch never embeds: a video that is not
    stored is reported, and so is a line that holds no video id; the exit
    status is 0 once the file has been read. With --format ids each answer's
    neighbours are one id a line, answers apart by a blank line (lines that
    could not be answered are named on stderr).
    """
    chosen = chosen_format(fmt, as_json)
    options = parse_rerank(rerank)
    if ids_file is not None:
        if video is not None or image is not None:
            raise typer.BadParameter("--ids-file goes without VIDEO_ID_OR_URL and --image")
        if html is not None or sheet is not None:
            raise typer.BadParameter("--html and --sheet show one query, not an --ids-file")
    elif (video is None) == (image is None):
        raise typer.BadParameter("give either VIDEO_ID_OR_URL or --image PATH_OR_URL")
    from indexer.models import model_spec
    from indexer.service import FetcherOnFirstUse, build_service

    settings = ctx.obj if model is None else ctx.obj.with_model(
        model_spec(model).model_id)
    if ids_file is not None:
        from search.idlist import read_id_list, similar_to_listed

        listed = read_id_list(ids_file, max_bytes=settings.max_ids_file_bytes)
        with build_service(settings, fetcher=FetcherOnFirstUse(settings),
                           lookups_only=True) as service:
            answers = similar_to_listed(service, listed, k, options)
        if chosen == "json":
            echo_json([a.to_json() for a in answers])
        else:
            _print_listed(answers, chosen)
        return
    from search.cli.progress import progress_reporter
    from search.ids import parse_video_ref
    from search.neighbours import similar_to_image, similar_to_video

    # The model loads (and says so) only when an image or an unstored video is embedded.
    with progress_reporter(chosen != "table") as progress, build_service(
            settings, weights=weights, fetcher=FetcherOnFirstUse(settings), lookups_only=True,
            progress=progress) as service:
        if image is not None:
            result = similar_to_image(service, image, k, options)
        else:
            result = similar_to_video(service, parse_video_ref(video or ""), k, options)
        if html is not None or sheet is not None:
            from search.gallery import write_html, write_sheet

            if html is not None:
                wrote(write_html(service, result, html))
            if sheet is not None:
                wrote(write_sheet(service, result, sheet))
    if chosen == "json":
        echo_json(result.to_json())
    elif chosen == "ids":
        for neighbour in result.results:
            typer.echo(neighbour.video_id)
    else:
        _print_table(result)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch similar dQw4w9WgXcQ -k 5",
        "thumbsearch similar --image cat.jpg --html build/cat.html",
        "thumbsearch similar dQw4w9WgXcQ --format ids | thumbsearch similar --ids-file -",
    ))(similar)
