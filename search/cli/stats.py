"""``thumbsearch stats``: what the corpus holds, how big it is and whether it is healthy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.tables import Cell, Column, echo_table, human_size, human_time

__all__ = ["register", "stats", "stats_rows"]

_COLUMNS = (Column("figure", "id"), Column("value"))


def _index_line(index: dict[str, Any]) -> str:
    if index["type"] == "flat":
        return f"exact search, {index['size']} vectors"
    return (f"{index['type']} (approximate: recall@10 vs exact {index['recall_at_10']:.3f} "
            f"measured at build), {index['size']} vectors")


def _internals(index: dict[str, Any]) -> list[tuple[Cell, ...]]:
    params = ", ".join(f"{k} {v}" for k, v in index["params"].items())
    return [("factory", index["factory"] + (f" ({params})" if params else "")),
            ("snapshot", f"snapshot {index['snapshot_size']} + tail {index['tail_size']} "
                         f"vectors, watermark {index['watermark']}; {index['snapshot']} "
                         f"({index['snapshot_bytes']} bytes)"),
            ("per vector", f"{index['bytes_per_vector']:.0f} bytes a vector"
                           + (", memory-mapped" if index["mmap"] else "")
                           + (f"; re-scoring codes {human_size(index['codes_bytes'])}"
                              if index.get("codes_bytes") else "")
                           + (f"; {index['deleted']} deleted rows passed over"
                              if index.get("deleted") else ""))]


def _quota_line(quota: dict[str, Any]) -> str:
    said = ("; YouTube said quotaExceeded" if quota["search"]["exhausted"]
            or quota["units"]["exhausted"] else "")
    resets = human_time(datetime.fromisoformat(quota["resets"]))
    return (f"today search.list {quota['search']['used']}/{quota['search']['limit']} calls, "
            f"other methods {quota['units']['used']}/{quota['units']['limit']} units{said}; "
            f"resets {resets}")


def stats_rows(figures: dict[str, Any], verbose: bool) -> list[tuple[Cell, ...]]:
    """The rows of the ``stats`` table: user terms first, index internals when verbose."""
    disk = figures["disk"]
    database = ("on the database server" if disk["database"] is None
                else human_size(disk["database"]))
    rows: list[tuple[Cell, ...]] = [
        ("videos", figures["videos"]), ("vectors", figures["vectors"]),
        ("queries", figures["queries"]),
        ("model", f"{figures['model']} ({figures['dim']}-d)"),
        ("index", _index_line(figures["index"])),
        ("disk", f"database {database}, index {human_size(disk['index'])}, "
                 f"thumbnails {human_size(disk['thumbnails'])}"),
        ("memory", f"index {human_size(figures['memory']['index'])}"),
        ("health", figures["health"]),
        ("quota", _quota_line(figures["quota"])),
        ("home", figures["home"]),
    ]
    return rows + (_internals(figures["index"]) if verbose else [])


def stats(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also show the index internals: FAISS factory, snapshot and "
                                "tail, watermark, bytes a vector.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Show what the corpus holds, its size on disk and in memory, and its health.

    Videos, vectors and queries; the model and the index; the database, index and
    thumbnail cache sizes; health ("ok", or what `thumbsearch doctor` would look
    into); today's API quota use per bucket (search.list calls, other units) and
    when it resets (midnight Pacific time, shown in local time). With --json sizes
    are bytes and quota.resets is an ISO 8601 time.
    """
    from indexer.service import build_service
    from search.stats import corpus_stats

    with build_service(ctx.obj) as service:
        figures = corpus_stats(service)
    if as_json:
        echo_json(figures)
        return
    echo_table(_COLUMNS, stats_rows(figures, verbose))


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples("thumbsearch stats", "thumbsearch stats -v",
                                "thumbsearch stats --json"))(stats)
