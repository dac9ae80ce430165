"""The ``--on-match`` options of ``ingest`` and ``schedule``, and their one warning line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from search.cli.numbers import MAX_WAIT, finite

if TYPE_CHECKING:
    from indexer.ingest.summary import IngestSummary
    from indexer.service import Service

__all__ = ["OnMatchOption", "OnMatchTimeoutOption", "run_on_match_command"]

OnMatchOption = Annotated[str | None, typer.Option(
    "--on-match", metavar="CMD",
    help="When a run found re-uploads of watched items (`thumbsearch watch`), run CMD "
         "with /bin/sh, the matches as JSON on its stdin (docs/json.md). A failing CMD is "
         "reported; ingestion goes on.")]
OnMatchTimeoutOption = Annotated[float, typer.Option(
    "--on-match-timeout", metavar="SECONDS", min=1, max=MAX_WAIT, callback=finite,
    help="Kill --on-match's CMD after this long.")]


def run_on_match_command(service: Service, summary: IngestSummary, command: str | None,
                         timeout: float) -> None:
    """Run ``command`` for the matches ``summary``'s run recorded (none: nothing runs); a
    failure is one warning line on stderr."""
    if command is None or not summary.matches:
        return
    from search.notify import notify_run

    count, problem = notify_run(service, summary.run_id, command, timeout=timeout)
    if problem is not None:
        typer.echo(f"warning: the --on-match command for run {summary.run_id} "
                   f"({count} matches) failed: {problem}; ingestion goes on", err=True)
