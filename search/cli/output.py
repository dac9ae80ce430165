"""Printing helpers shared by the commands: JSON, summaries, result tables."""

from __future__ import annotations

import json
from typing import Any

import typer

from indexer.summary import IngestSummary

__all__ = ["echo_json", "finish_ingest"]


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def finish_ingest(summary: IngestSummary, as_json: bool) -> None:
    """Print an ingest summary; exit 3 after it when the quota stopped the run."""
    if as_json:
        echo_json(summary.to_json())
    else:
        typer.echo(f"queries {summary.queries}, pages {summary.pages}, new videos {summary.new}, "
                   f"already known {summary.known}, failed {len(summary.failed)}, "
                   f"API calls: search.list {summary.search_calls}, "
                   f"videos.list {summary.videos_calls}")
        for failure in summary.failed:
            typer.echo(f"  failed {failure.video_id}: {failure.reason}")
    if summary.stopped:
        typer.echo(f"stopped: {summary.stopped}", err=True)
        raise typer.Exit(3)
