"""``thumbsearch stats``: what the corpus holds."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from search.cli.output import echo_json

__all__ = ["register", "stats"]


def _describe_index(index: dict[str, Any]) -> str:
    line = f"{index['type']}, {index['size']} vectors"
    if index["type"] != "flat":
        params = ", ".join(f"{k} {v}" for k, v in index["params"].items())
        line += (f" ({index['factory']}, {params}; recall@10 vs exact "
                 f"{index['recall_at_10']:.3f} measured at build)")
    line += (f"\n         snapshot {index['snapshot_size']} + tail {index['tail_size']}; "
             f"{index['bytes_per_vector']:.0f} bytes a vector; "
             f"{index['memory_bytes'] / 2**20:.1f} MiB in memory"
             + (" (memory-mapped)" if index["mmap"] else "")
             + f"; {index['snapshot_bytes']} bytes on disk")
    return line


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Show counts of videos, vectors and queries, the model, the index, the data directory.

    Also today's API quota use per bucket (search.list calls, other units) and
    when it resets (midnight Pacific time).
    """
    from indexer.service import build_service
    from search.stats import corpus_stats

    with build_service(ctx.obj) as service:
        figures = corpus_stats(service)
    if as_json:
        echo_json(figures)
        return
    index = figures["index"]
    typer.echo(f"videos   {figures['videos']}\nvectors  {figures['vectors']}\n"
               f"queries  {figures['queries']}\nmodel    {figures['model']} "
               f"({figures['dim']}-d)\nindex    {_describe_index(index)}\n"
               f"home     {figures['home']}")
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
