"""``thumbsearch add``: ingest local image files and folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from search.cli.helptext import examples
from search.cli.output import finish_ingest
from search.cli.progress import progress_reporter

__all__ = ["add", "register"]


def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched "
                                                     "recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Embed local image files and folders (such as thumbnails saved by yt-dlp).

    A file named '<title> [<video id>].jpg' is stored under that video id, with
    metadata from the '.info.json' beside it; any other image gets a stable id
    'local:<hash>' from its content.
    """
    from indexer.ingest.local import add_paths
    from indexer.service import build_service

    with progress_reporter(as_json) as progress, \
            build_service(ctx.obj, progress=progress) as service:
        summary = add_paths(service, paths, progress=progress)
    finish_ingest(summary, as_json)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch add ~/Downloads/thumbnails",
        "thumbsearch add 'Some title [dQw4w9WgXcQ].jpg' --json",
    ))(add)
