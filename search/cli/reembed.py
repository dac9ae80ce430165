"""``thumbsearch reembed``: embed the stored corpus with another model, from the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.progress import progress_reporter

__all__ = ["reembed", "register"]


def reembed(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(
        "--model", help="Model id to embed with, e.g. vgg16 or efficientnet-lite0+unbar "
                        "(see `thumbsearch models`).")],
    weights: Annotated[Path | None, typer.Option(
        "--weights", metavar="FILE", help="A local weights file for the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Embed the stored videos with another model, from the thumbnail cache.

    Every stored video that has no vector for --model yet is embedded from the cached
    thumbnail (no network) into that model's own index. Resumable: a second run does
    nothing. Videos whose thumbnail is not cached are listed as failed.
    """
    from indexer.ingest.reembed import reembed as reembed_corpus
    from indexer.models import model_spec
    from indexer.service import build_service

    settings = ctx.obj.with_model(model_spec(model).model_id)
    with progress_reporter(as_json) as progress, \
            build_service(settings, weights=weights, progress=progress) as service:
        summary = reembed_corpus(service, progress=progress)
    if as_json:
        echo_json(summary.to_json())
        return
    typer.echo(f"model {summary.model}: embedded {summary.embedded}, already embedded "
               f"{summary.already}, failed {len(summary.failed)}")
    if summary.nothing_to_do:
        typer.echo(f"nothing to do: {summary.nothing_to_do}")
    for failure in summary.failed:
        typer.echo(f"  failed {failure.video_id}: {failure.reason}")


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch reembed --model vgg16",
        "thumbsearch reembed --model efficientnet-lite0+unbar+gem && "
        "thumbsearch similar dQw4w9WgXcQ --model efficientnet-lite0+unbar+gem",
    ))(reembed)
