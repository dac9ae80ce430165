"""``thumbsearch runs``: the history of ingest runs, schedule batches and refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.helptext import examples
from search.cli.numbers import MAX_RUNS
from search.cli.output import echo_json
from search.cli.tables import Cell, Column, echo_table, human_time

if TYPE_CHECKING:
    from indexer.store.history import RunRecord

__all__ = ["register", "runs", "runs_rows"]


# On a terminal the queries, pages, units and per-query columns are left out, to fit 80
# columns.
_COLUMNS = (Column("id", "number"), Column("kind", "id"), Column("started", "id"),
            Column("secs", "number"), Column("status", "id"),
            Column("queries", "number", piped_only=True),
            Column("pages", "number", piped_only=True), Column("new", "number"),
            Column("known", "number"), Column("failed", "number"), Column("search", "number"),
            Column("units", "number", piped_only=True), Column("matches", "number"),
            Column("per query (pages)", piped_only=True))


def runs_rows(records: list[RunRecord]) -> list[tuple[Cell, ...]]:
    """The rows of the ``thumbsearch runs`` table, one a run."""
    rows: list[tuple[Cell, ...]] = []
    for record in records:
        data = record.to_json()
        seconds = ((record.finished_at - record.started_at).total_seconds()
                   if record.finished_at else None)
        per_query = ", ".join(f"{label}:{q.get('pages', 0)}"
                              for label, q in data["per_query"].items() if q.get("pages"))
        rows.append((record.id, record.kind, human_time(record.started_at),
                     f"{seconds:.1f}" if seconds is not None else None, record.status,
                     data["queries"], data["pages"], data["new"], data["known"],
                     data["failed"], data["quota"]["search"], data["quota"]["units"],
                     data["watch_matches"], per_query or None))
    return rows


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_RUNS,
                                       help="How many of the latest runs to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List recent runs: when, how they ended, what they found and the quota they spent.

    Status is done, quota (stopped at the day's quota; the next run resumes),
    failed, running, or interrupted (its process was killed or its host went down:
    the next run goes on where it stopped). 'search' and 'units' are the quota each
    run spent; matches is how many re-uploads of watched thumbnails it found
    (`thumbsearch watch matches`). Times are local; secs is how long a run took.
    """
    from indexer.service import build_service
    from indexer.store.history import list_runs

    with build_service(ctx.obj) as service:
        settings = service.settings
        records = list_runs(service.store, limit, stale_after=settings.claim_lease,
                            home=settings.home)
    if as_json:
        echo_json([r.to_json() for r in records])
    else:
        if records:
            echo_table(_COLUMNS, runs_rows(records))
        else:
            typer.echo("no runs yet")


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples("thumbsearch runs -n 5", "thumbsearch runs --json"))(runs)
