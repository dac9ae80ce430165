"""``thumbsearch make-neardup``: write a near-duplicate benchmark from a folder of photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indexer.errors import UsageError
from search.cli.helptext import examples
from search.cli.numbers import MAX_SEED

__all__ = ["make_neardup_command", "register"]


def make_neardup_command(
    ctx: typer.Context,
    src: Annotated[Path | None, typer.Argument(
        metavar="SRC", help="Folder of photos (searched recursively).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Argument(
        metavar="OUT", help="Folder to write: one subfolder per photo.",
        show_default=False)] = None,
    variants: Annotated[int, typer.Option("--variants", min=1, max=100,
                                          help="Variants per photo.")] = 8,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED,
                                      help="Random seed; the same seed writes the "
                                           "same files.")] = 0,
    sample_photos: Annotated[bool, typer.Option(
        "--sample-photos", help="Use the photos scikit-image and scikit-learn ship instead of "
                                "SRC (then give only OUT).")] = False,
) -> None:
    """Turn each photo into a label folder: the original plus N YouTube-style re-uploads.

    Variants use the thumbnail sizes (120x90 ... 1280x720, 4:3 ones letterboxed),
    low-quality JPEG re-encoding, crops, a drawn title and duration badge, colour
    shifts and flips. The result is a dataset for `thumbsearch eval`.
    """
    from search.eval.neardup import make_neardup

    if sample_photos:
        if out is not None or src is None:
            raise UsageError("with --sample-photos give only OUT")
        source, target = None, src
    else:
        if src is None or out is None:
            raise UsageError("give SRC and OUT (or --sample-photos OUT)")
        source, target = src, out
    summary = make_neardup(source, target, variants=variants, seed=seed,
                           max_bytes=ctx.obj.max_image_bytes)
    typer.echo(f"wrote {summary.images} images in {summary.labels} label folders to "
               f"{summary.out}", err=True)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("make-neardup", epilog=examples(
        "thumbsearch make-neardup ~/Pictures build/neardup --variants 8",
        "thumbsearch make-neardup --sample-photos build/neardup",
    ))(make_neardup_command)
