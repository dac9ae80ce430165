"""``thumbsearch duplicates``: groups of near-identical thumbnails (who re-uploaded what)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from indexer.errors import StoreError
from search.cli.formats import Format, FormatOption, JsonOption, chosen_format, wrote
from search.cli.helptext import examples
from search.cli.numbers import MAX_ROWS, finite
from search.cli.output import echo_json
from search.cli.tables import Column, echo_table, human_time
from search.duplicates import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from search.duplicates import DuplicateGroup

__all__ = ["duplicates", "register", "render_groups_html"]


_COLUMNS = (Column("group", "number"), Column("score", "score"), Column("video id", "id"),
            Column("published", "id"), Column("channel", "title"),
            Column("title", "title", share=2))


def _print_groups(groups: list[DuplicateGroup], fmt: Format) -> None:
    if fmt == "ids":
        if groups:
            typer.echo("\n\n".join("\n".join(v.video_id for v in g.videos)
                                     for g in groups))
        return
    if not groups:
        typer.echo("no groups")
        return
    echo_table(_COLUMNS, [(number, v.best_score, v.video_id, human_time(v.published_at),
                           v.channel_title or v.channel_id, v.title)
                          for number, group in enumerate(groups, start=1)
                          for v in group.videos], group_by=0)


def render_groups_html(groups: list[DuplicateGroup], threshold: float,
                       images: dict[str, str | None]) -> str:
    """A self-contained page of the groups; ``images`` maps video id to a data: URI."""
    from search.gallery import render_duplicates

    return render_duplicates(groups, threshold, images)


def duplicates(
    ctx: typer.Context,
    threshold: Annotated[float, typer.Option(
        "--threshold", min=-1.0, max=1.0, callback=finite,
        help="Cosine similarity above which two thumbnails count as near-identical.")
    ] = DEFAULT_THRESHOLD,
    across_channels: Annotated[bool, typer.Option(
        "--across-channels", help="Keep only groups that span several channels.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", min=1, max=MAX_ROWS, show_default=False,
        help="List only the N largest groups (default: all).")] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Also write a self-contained HTML page of the groups.")
    ] = None,
) -> None:
    """List groups of videos whose thumbnails are near-identical, largest first.

    Each group lists its videos, earliest publish first (the likely original), with
    each one's best score within the group, its publish time and channel. Computed
    through the index in batches. With --format ids every video of every group is
    one id a line, groups apart by a blank line (which `similar --ids-file` skips).
    """
    import time

    chosen = chosen_format(fmt, as_json)
    from indexer.service import build_service
    from search.cli.progress import progress_reporter
    from search.duplicates import find_duplicates

    with progress_reporter(chosen != "table") as progress, \
            build_service(ctx.obj) as service:
        corpus = service.require_corpus()  # an empty corpus is one error line, no step
        started = time.perf_counter()
        progress.begin(f"comparing {corpus.index.size} stored thumbnails with their neighbours")
        groups = find_duplicates(service, threshold, across_channels=across_channels)
        progress.done(f"{len(groups)} group(s) found in {time.perf_counter() - started:.1f} s")
        groups = groups[:limit] if limit is not None else groups
        if html is not None:
            from search.gallery import cached_thumbnail, data_uri_of

            videos = service.store.get_videos([v.video_id for g in groups for v in g.videos])
            images = {vid: data_uri_of(cached_thumbnail(service, video), vid)
                      for vid, video in videos.items()}
            try:
                html.parent.mkdir(parents=True, exist_ok=True)
                html.write_text(render_groups_html(groups, threshold, images), "utf-8")
            except OSError as exc:
                raise StoreError(f"cannot write {html}: {exc.strerror or exc}") from exc
            wrote(html)
    if chosen == "json":
        echo_json({"threshold": threshold, "across_channels": across_channels,
                   "groups": [g.to_json() for g in groups]})
    else:
        _print_groups(groups, chosen)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch duplicates --across-channels -n 20",
        "thumbsearch duplicates --threshold 0.95 --html build/duplicates.html",
        "thumbsearch duplicates --format ids | thumbsearch similar --ids-file - -k 3",
    ))(duplicates)
