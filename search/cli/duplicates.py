"""``thumbsearch duplicates``: groups of near-identical thumbnails (who re-uploaded what)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from indexer.errors import StoreError
from search.cli.numbers import finite
from search.cli.output import echo_json
from search.duplicates import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from search.duplicates import DuplicateGroup

__all__ = ["duplicates", "register", "render_groups_html"]


def _print_groups(groups: list[DuplicateGroup]) -> None:
    if not groups:
        typer.echo("no groups")
        return
    for number, group in enumerate(groups, start=1):
        first = group.first_published
        typer.echo(f"group {number}: {len(group.videos)} videos, {len(group.channels)} "
                   f"channels, first published {first.isoformat() if first else 'unknown'}")
        for v in group.videos:
            when = v.published_at.isoformat() if v.published_at else "unknown"
            title = v.title if len(v.title) <= 40 else v.title[:39] + "…"
            typer.echo(f"  {v.best_score:6.4f}  {v.video_id:<22}  {when:<25}  "
                       f"{v.channel_title or v.channel_id:<20}  {title}")


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Also write a self-contained HTML page of the groups.")
    ] = None,
) -> None:
    """List groups of videos whose thumbnails are near-identical, largest first.

    Each group lists its videos (earliest publish first, the likely original), their
    channels and the first publish time. Computed through the index in batches.
    """
    import time

    from indexer.service import build_service
    from search.cli.progress import progress_reporter
    from search.duplicates import find_duplicates

    with progress_reporter(as_json) as progress, build_service(ctx.obj) as service:
        corpus = service.require_corpus()  # an empty corpus is one error line, no step
        started = time.perf_counter()
        progress.begin(f"comparing {corpus.index.size} stored thumbnails with their neighbours")
        groups = find_duplicates(service, threshold, across_channels=across_channels)
        progress.done(f"{len(groups)} group(s) found in {time.perf_counter() - started:.1f} s")
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
    if as_json:
        echo_json({"threshold": threshold, "across_channels": across_channels,
                   "groups": [g.to_json() for g in groups]})
    else:
        _print_groups(groups)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(duplicates)
