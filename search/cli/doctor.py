"""``thumbsearch doctor``: check the database against the index and say what is wrong."""

from __future__ import annotations

from typing import Annotated

import typer

from search.cli.output import echo_json

__all__ = ["doctor", "register"]


def doctor(
    ctx: typer.Context,
    sample: Annotated[int, typer.Option(min=0, max=100_000,
                                        help="Vectors to re-read and compare.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the database against the index: counts, ids, model, dimension, watermark.

    A sample of vectors is read from both and compared. Exit 0 when all is well,
    1 when something is wrong (each problem on its own line, with what to run).
    """
    from indexer.doctor import check_corpus
    from indexer.service import build_service

    with build_service(ctx.obj) as service:
        report = check_corpus(service, sample=sample)
    if as_json:
        echo_json(report.to_json())
    else:
        typer.echo(f"model     {report.model} ({report.dim}-d)\n"
                   f"database  {report.videos} videos, {report.vectors} vectors, "
                   f"last row {report.last_row_id}\n"
                   f"snapshot  {report.snapshot_size} vectors, watermark "
                   f"{report.snapshot_watermark}\nindex     {report.index_size} vectors after "
                   f"replay, {report.sampled} sampled")
        for problem in report.problems:
            typer.echo(f"problem: {problem}", err=True)
        typer.echo("ok" if report.ok else f"{len(report.problems)} problem(s) found")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(doctor)
