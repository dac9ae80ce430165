"""The schedule loop: run a queries file every so often until asked to stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from indexer.errors import (
    ApiKeyInvalidError,
    ConfigError,
    InputError,
    ThumbsearchError,
    YouTubeError,
)
from indexer.ingest.queries import run_queries
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Progress
from indexer.service import Service
from indexer.youtube.queryfile import QuerySpec

__all__ = ["run_schedule"]

# Errors a later batch may not see again (network, a busy lock, the database): logged, loop on.
_FATAL = (ConfigError, InputError, ApiKeyInvalidError)


def run_schedule(service: Service, load: Callable[[], Sequence[QuerySpec]], every: timedelta,
                 *, stop: threading.Event | None = None, wait: float = 0.0,
                 progress: Callable[[], AbstractContextManager[Progress]] | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None,
                 on_error: Callable[[ThumbsearchError], None] | None = None,
                 pause: Callable[[float], bool] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_batches: int | None = None) -> int:
    """Run batches every ``every`` until ``stop`` is set; return how many batches ran.

    ``progress()`` makes each batch's reporter; ``pause(seconds)`` waits between
    batches and returns True when stopped (default: ``stop.wait``). A quota stop is
    not an error here: the next batch resumes.
    Configuration and input errors end the loop; other errors are reported and the
    loop goes on.

    Each batch is one ``run_queries`` (resuming where the last one stopped). A stop
    request (Ctrl-C, SIGTERM: the CLI sets ``stop``) is honoured between batches, so
    the batch under way finishes and nothing is lost. The queries file is read again
    before every batch, so edits apply without a restart.
    """
    stop = stop or threading.Event()
    pause = pause or stop.wait
    if every <= timedelta(0):
        raise InputError("--every must be positive")
    batches = 0
    while not stop.is_set():
        started = monotonic()
        try:
            specs = load()
            reporter = progress() if progress else nullcontext(NullProgress())
            with reporter as shown:  # fresh bars for each batch
                service.progress = shown  # the model loads in the first batch that embeds
                try:
                    summary = run_queries(service, specs, resume=True, wait=wait,
                                          progress=shown)
                finally:
                    service.progress = NullProgress()
            if on_batch is not None:
                on_batch(summary)
        except _FATAL:
            raise
        except (YouTubeError, ThumbsearchError) as exc:
            if on_error is None:
                raise
            on_error(exc)
        batches += 1
        if max_batches is not None and batches >= max_batches:
            break
        left = every.total_seconds() - (monotonic() - started)
        if pause(max(0.0, left)):
            break
    return batches
