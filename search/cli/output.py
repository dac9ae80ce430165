"""Printing helpers shared by the commands: JSON, summaries, result tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from indexer.ingest.summary import IngestSummary

__all__ = ["echo_json", "exit_if_stopped", "finish_ingest", "skipped_line"]


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def finish_ingest(summary: IngestSummary, as_json: bool) -> None:
    """Print an ingest summary (and why there was nothing to do, when there was not); exit 3
    after it when the quota stopped the run."""
    if as_json:
        echo_json(summary.to_json())
    else:
        counts = (f"new videos {summary.new}, already known {summary.known}, "
                  f"failed {len(summary.failed)}{summary.matches_part()}")
        if summary.pages or summary.search_calls:
            typer.echo(f"queries {summary.queries}, pages {summary.pages}, {counts}, "
                       f"API calls: search.list {summary.search_calls}, "
                       f"videos.list {summary.videos_calls}")
        else:
            typer.echo(counts)
        if summary.nothing_to_do:
            typer.echo(f"nothing to do: {summary.nothing_to_do}")
        for failure in summary.failed:
            typer.echo(f"  failed {failure.video_id}: {failure.reason}")
        if summary.skipped:
            typer.echo(skipped_line(summary.skipped))
        if summary.ignored_fields:
            typer.echo(f"ignored {len(summary.ignored_fields)} bad .info.json field(s); "
                       "the images were added without them")
            for note in summary.ignored_fields:
                typer.echo(f"  ignored {note}")
    exit_if_stopped(summary.stopped)


def skipped_line(skipped: dict[str, int]) -> str:
    """One line naming the API answer items (or fields) the checks dropped, by reason."""
    reasons = "; ".join(f"{reason} ({count})" for reason, count in sorted(skipped.items()))
    return (f"skipped {sum(skipped.values())} item(s) or field(s) of YouTube's answers that "
            f"are not the documented shape: {reasons}")


def exit_if_stopped(stopped: str | None) -> None:
    """After a summary: name the quota stop on stderr and exit 3, if the run was stopped."""
    if stopped:
        typer.echo(f"stopped: {stopped}", err=True)
        raise typer.Exit(3)
