"""``thumbsearch index``: maintenance of the FAISS index (``index build``, ``index rebuild``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from indexer.bounds import quote
from indexer.errors import UsageError
from search.cli.helptext import SummaryGroup, examples
from search.cli.ingest import WAIT_HELP
from search.cli.numbers import MAX_WAIT, finite

if TYPE_CHECKING:
    from indexer.vectors.types import BuildReport

__all__ = ["build", "index_app", "rebuild", "register"]

index_app = typer.Typer(help="Maintain the vector index (derived from the database).",
                        cls=SummaryGroup, no_args_is_help=True, rich_markup_mode=None,
                        epilog=examples("thumbsearch index build --type hnsw",
                                        "thumbsearch index rebuild"))

TYPE_HELP = ("Index type: auto (exact below 50,000 vectors, IVF above), flat (exact), "
             "ivf (PCA + IVF + 4-bit fast-scan codes, memory-mapped) or hnsw (PCA + HNSW "
             "graph + 8-bit codes). Approximate types are tuned for recall@10 >= 0.95 "
             "against exact search, measured on the corpus, and rank their candidates by "
             "exact cosine. On a small corpus their PCA and lists are narrowed to fit it; "
             "ivf needs at least 78 vectors, hnsw 11.")


def _run(ctx: typer.Context, wait: float, kind: str | None, as_json: bool, verb: str) -> None:
    from indexer.doctor import rebuild_index
    from indexer.service import build_service
    from search.cli.output import echo_json
    from search.cli.progress import progress_reporter

    with progress_reporter(as_json) as progress, build_service(ctx.obj) as service:
        report = rebuild_index(service, wait=wait, kind=kind, progress=progress)
    if as_json:
        echo_json({"model": service.spec.model_id, "vectors": report.trained_size,
                   **report.to_json()})
        return
    typer.echo(f"index {verb}: {report.trained_size} vectors of {service.spec.model_id}")
    _describe(report)


def _describe(report: BuildReport) -> None:
    if report.type == "flat":
        typer.echo("type flat (exact search)")
        return
    params = ", ".join(f"{k} {v}" for k, v in report.params.items())
    typer.echo(f"type {report.type} ({report.factory}), {params}; recall@10 vs exact "
               f"{report.recall_at_10:.3f} on {report.tune_queries} corpus queries; "
               f"built in {report.seconds:.1f} s")


@index_app.command(epilog=examples("thumbsearch index build",
                                   "thumbsearch index build --type ivf --wait 600"))
def build(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--type", metavar="auto|flat|ivf|hnsw",
                                      help=TYPE_HELP)] = "auto",
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print how it was built as JSON.")]
    = False,
) -> None:
    """Build the index snapshot from the vectors in the database, of the type asked for.

    The new snapshot is written beside the current one and replaces it only once it is
    complete and verified: a failure leaves the current index as it was.
    Later ingests keep the type; they retrain an approximate index once the corpus
    has doubled. Takes the writer lock, so it never races an ingest run.
    """
    from indexer.vectors.types import INDEX_TYPES

    if kind not in INDEX_TYPES:  # before the service opens: a usage error, exit 2
        raise UsageError(f"unknown index type {quote(kind)}: choose one of "
                         f"{', '.join(INDEX_TYPES)}")
    _run(ctx, wait, kind, as_json, "built")


@index_app.command(epilog=examples("thumbsearch doctor || thumbsearch index rebuild"))
def rebuild(
    ctx: typer.Context,
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print how it was built as JSON.")]
    = False,
) -> None:
    """Rebuild the index snapshot from the vectors in the database, then swap it in.

    Keeps the index type last asked for with `index build` (exact while the corpus is
    too small for it). The current index stays in use until the new one is complete
    and verified. Takes the writer lock, so it never races an ingest run.
    """
    _run(ctx, wait, None, as_json, "rebuilt")


def register(app: typer.Typer) -> None:
    """Add the sub-app to the root app."""
    app.add_typer(index_app, name="index")
