"""``thumbsearch doctor``: check the database against the index and say what is wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.tables import Cell, Column, echo_table, human_size

if TYPE_CHECKING:
    from indexer.doctor import DoctorReport

__all__ = ["doctor", "doctor_rows", "register", "verdict"]

_COLUMNS = (Column("check", "id"), Column("result"))


def verdict(report: DoctorReport) -> str:
    """The first line: ok, or how many problems (each follows on stderr with what to run)."""
    if report.ok:
        return "ok: the database and the index agree"
    return f"{len(report.problems)} problem(s) found: each is named below with what to run"


def doctor_rows(report: DoctorReport, verbose: bool) -> list[tuple[Cell, ...]]:
    """The checks in plain words; the snapshot's internals when verbose."""
    missing = report.videos - report.vectors
    rows: list[tuple[Cell, ...]] = [
        ("model", f"{report.model} ({report.dim}-d)"),
        ("database", f"{report.videos} videos, {report.vectors} with a vector"
                     + (f" ({missing} without)" if missing > 0 else "")),
        ("index", f"{report.index_size} vectors"
                  + (" (the same number as the database)"
                     if report.index_size == report.vectors else "")),
        ("sample", f"{report.sampled} vectors read from both and compared"),
    ]
    if verbose:
        rows += [("snapshot", f"{report.snapshot_size} vectors, watermark "
                              f"{report.snapshot_watermark}"
                              + (f"; re-scoring codes {human_size(report.codes_bytes)}"
                                 if report.codes_bytes else "")
                              + (f"; {report.deleted} deleted rows passed over"
                                 if report.deleted else "")),
                 ("last row", report.last_row_id)]
    return rows


def doctor(
    ctx: typer.Context,
    sample: Annotated[int, typer.Option(min=0, max=100_000,
                                        help="Vectors to re-read and compare.")] = 100,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also show the snapshot's size and watermark and the last "
                                "row id.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that the database and the index agree, and say what to run if not.

    Compares counts, ids, model and dimension, and reads a sample of vectors from
    both. The first line is the verdict. Exit 0 when all is well, 1 when something
    is wrong (each problem on its own line on stderr, with what to run).
    """
    from indexer.doctor import check_corpus
    from indexer.service import build_service

    with build_service(ctx.obj) as service:
        report = check_corpus(service, sample=sample)
    if as_json:
        echo_json(report.to_json())
    else:
        typer.echo(verdict(report))
        echo_table(_COLUMNS, doctor_rows(report, verbose))
        for problem in report.problems:
            typer.echo(f"problem: {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples("thumbsearch doctor", "thumbsearch doctor --sample 1000 -v",
                                "thumbsearch doctor || thumbsearch index rebuild"))(doctor)
