"""``thumbsearch runs``: the history of ingest runs, schedule batches and refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.numbers import MAX_RUNS
from search.cli.output import echo_json

if TYPE_CHECKING:
    from indexer.store.history import RunRecord

__all__ = ["format_runs", "register", "runs"]


def format_runs(records: list[RunRecord]) -> str:
    """The human table of ``thumbsearch runs``."""
    if not records:
        return "no runs yet"
    lines = [f"{'id':>4}  {'kind':<8}  {'started (UTC)':<16}  {'secs':>6}  {'status':<11}  "
             f"{'queries':>7}  {'pages':>5}  {'new':>5}  {'known':>5}  {'failed':>6}  "
             f"{'search':>6}  {'units':>5}  per query (pages)"]
    for record in records:
        data = record.to_json()
        seconds = ((record.finished_at - record.started_at).total_seconds()
                   if record.finished_at else None)
        per_query = ", ".join(f"{label}:{q.get('pages', 0)}"
                              for label, q in data["per_query"].items() if q.get("pages"))
        lines.append(
            f"{record.id:>4}  {record.kind:<8}  {record.started_at:%Y-%m-%d %H:%M}  "
            f"{(f'{seconds:.1f}' if seconds is not None else '-'):>6}  {record.status:<11}  "
            f"{data['queries']:>7}  {data['pages']:>5}  {data['new']:>5}  {data['known']:>5}  "
            f"{data['failed']:>6}  {data['quota']['search']:>6}  {data['quota']['units']:>5}  "
            f"{per_query or '-'}")
    return "\n".join(lines)


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_RUNS,
                                       help="How many of the latest runs to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List recent runs: start, status, pages, new/known/failed videos and quota spent.

    Status is done, quota (stopped at the day's quota; the next run resumes),
    failed, running, or interrupted (its process was killed or its host went down:
    the next run goes on where it stopped). 'search' and 'units' are the quota each
    run spent.
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
        typer.echo(format_runs(records))


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(runs)
