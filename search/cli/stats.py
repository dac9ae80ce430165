"""``thumbsearch stats``: what the corpus holds."""

from __future__ import annotations

from typing import Annotated

import typer

from indexer.service import build_service
from search.cli.output import echo_json
from search.stats import corpus_stats

__all__ = ["register", "stats"]


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Show counts of videos, vectors and queries, the model, the index, the data directory.

    Also today's API quota use per bucket (search.list calls, other units) and
    when it resets (midnight Pacific time).
    """
    service = build_service(ctx.obj)
    try:
        figures = corpus_stats(service)
    finally:
        service.close()
    if as_json:
        echo_json(figures)
        return
    index = figures["index"]
    typer.echo(f"videos   {figures['videos']}\nvectors  {figures['vectors']}\n"
               f"queries  {figures['queries']}\nmodel    {figures['model']} "
               f"({figures['dim']}-d)\nindex    {index['type']}, {index['size']} vectors, "
               f"{index['snapshot_bytes']} bytes on disk\nhome     {figures['home']}")
    quota = figures["quota"]
    typer.echo(f"quota    today (Pacific {quota['day']}): search.list "
               f"{quota['search']['used']}/{quota['search']['limit']} calls, other methods "
               f"{quota['units']['used']}/{quota['units']['limit']} units"
               + ("; YouTube said quotaExceeded" if quota["search"]["exhausted"]
                  or quota["units"]["exhausted"] else "")
               + f"\n         {quota['resets']}")


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(stats)
