"""``thumbsearch index``: maintenance of the FAISS index (``index rebuild``)."""

from __future__ import annotations

from typing import Annotated

import typer

from indexer.doctor import rebuild_index
from indexer.service import build_service
from search.cli.ingest import WAIT_HELP

__all__ = ["index_app", "rebuild", "register"]

index_app = typer.Typer(help="Maintain the vector index (derived from the database).",
                        no_args_is_help=True, rich_markup_mode=None)


@index_app.command()
def rebuild(
    ctx: typer.Context,
    wait: Annotated[float, typer.Option(min=0, help=WAIT_HELP)] = 0.0,
) -> None:
    """Delete the index snapshot and rebuild it from the vectors in the database.

    Takes the writer lock, so it never races an ingest run.
    """
    service = build_service(ctx.obj)
    try:
        size = rebuild_index(service, wait=wait)
    finally:
        service.close()
    typer.echo(f"index rebuilt: {size} vectors of {service.spec.model_id}")


def register(app: typer.Typer) -> None:
    """Add the sub-app to the root app."""
    app.add_typer(index_app, name="index")
