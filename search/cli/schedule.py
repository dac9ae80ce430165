"""``thumbsearch schedule``: run a queries file every so often until stopped."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from indexer.errors import ThumbsearchError
from indexer.youtube.queryfile import MAX_PAGES
from search.cli.helptext import examples
from search.cli.ingest import WAIT_HELP
from search.cli.numbers import MAX_WAIT, finite
from search.cli.onmatch import OnMatchOption, OnMatchTimeoutOption, run_on_match_command
from search.cli.progress import progress_reporter

if TYPE_CHECKING:
    from indexer.ingest.summary import IngestSummary
    from indexer.youtube.queryfile import QuerySpec

__all__ = ["register", "schedule"]


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the batch under way finishes); a second SIGINT aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        typer.echo(f"received {signal.Signals(signum).name}: stopping after the current batch",
                   err=True)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _batch_line(summary: IngestSummary) -> str:
    line = (f"batch: queries {summary.queries}, pages {summary.pages}, new videos "
            f"{summary.new}, already known {summary.known}, failed {len(summary.failed)}, "
            f"API calls: search.list {summary.search_calls}, videos.list {summary.videos_calls}"
            f"{summary.matches_part()}")
    line += f"; nothing to do: {summary.nothing_to_do}" if summary.nothing_to_do else ""
    return line + (f"; stopped: {summary.stopped}" if summary.stopped else "")


def schedule(
    ctx: typer.Context,
    queries_file: Annotated[Path, typer.Argument(metavar="FILE",
                                                 help="TOML queries file ([[queries]] tables).")],
    every: Annotated[str, typer.Option(help="Time between batch starts, e.g. 6h, 30m, 1d.")] = "6h",
    pages: Annotated[int, typer.Option(min=1, max=MAX_PAGES,
                                       help="Default pages per query and pass.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=50, help="Default results per page.")] = 50,
    wait: Annotated[float, typer.Option(min=0, max=MAX_WAIT, callback=finite,
                                      help=WAIT_HELP)] = 0.0,
    on_match: OnMatchOption = None,
    on_match_timeout: OnMatchTimeoutOption = 60.0,
) -> None:
    """Run a queries file now and then every --every, until Ctrl-C or SIGTERM.

    Each batch is `thumbsearch ingest --queries-file FILE`: it shares the day's
    quota fairly, stops cleanly when it is spent and the next batch resumes each
    query where it stopped. A stop request lets the current batch finish. The
    file is read again before each batch. One summary line per batch on stdout,
    progress on stderr. With --on-match, each batch that recorded matches runs
    the command once with them.
    """
    from indexer.ingest.schedule import run_schedule
    from indexer.service import build_service
    from indexer.youtube.queryfile import load_queries_file, parse_duration

    interval = parse_duration(every, "--every")
    limit = ctx.obj.max_queries_file_bytes
    # fail fast on a bad file
    load_queries_file(queries_file, pages=pages, per_page=per_page, max_bytes=limit)

    def load() -> list[QuerySpec]:
        return load_queries_file(queries_file, pages=pages, per_page=per_page, max_bytes=limit)

    def on_error(exc: ThumbsearchError) -> None:
        typer.echo(f"error: {exc} (trying again next batch)", err=True)

    stop = threading.Event()
    try:
        with build_service(ctx.obj) as service, _stop_on_signals(stop):
            def on_batch(summary: IngestSummary) -> None:
                typer.echo(_batch_line(summary))
                run_on_match_command(service, summary, on_match, on_match_timeout)

            run_schedule(service, load, interval, stop=stop, wait=wait,
                         progress=progress_reporter, on_batch=on_batch, on_error=on_error)
    except KeyboardInterrupt:
        raise ThumbsearchError("interrupted twice: stopped in the middle of a batch "
                         "(what was stored is kept; the next run resumes)") from None


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command(epilog=examples(
        "thumbsearch schedule queries.toml --every 6h",
        "nohup thumbsearch schedule queries.toml --every 1d >> schedule.log &",
    ))(schedule)
