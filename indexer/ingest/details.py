"""Details for stored videos as they build up: videos.list, 50 ids a call, within the quota."""

from __future__ import annotations

from collections.abc import Iterable

from indexer.errors import QuotaExceededError
from indexer.ingest.enrich import enrich_videos, unenriched_video_ids
from indexer.ingest.summary import IngestSummary
from indexer.progress import Progress
from indexer.service import Service
from indexer.youtube.client import MAX_IDS_PER_CALL

__all__ = ["Details"]


class Details:
    """Videos waiting for their details, asked for in whole batches of 50 while a run goes on.

    A quota stop is kept in ``stop`` and nothing more is asked; with ``ends_run`` the
    loop then reads no more (a search ingest), else downloads go on (an id list). With a
    ``label``, each call is reported to ``progress`` under it. With ``sweep``, ``finish``
    goes on with stored videos still without details that were not asked for yet, linked
    to a query or not, until none is left.
    """

    def __init__(self, service: Service, summary: IngestSummary, waiting: Iterable[str], *,
                 ends_run: bool, progress: Progress, label: str | None = None,
                 sweep: bool = False) -> None:
        self.service = service
        self.summary = summary
        self.waiting = list(waiting)  # stored ids whose details are still to ask for
        self.ends_run = ends_run
        self.progress = progress
        self.label = label
        self.sweep = sweep
        self.asked: set[str] = set()  # ids whose details were asked for in this run
        self.stop: QuotaExceededError | None = None

    def add(self, ids: Iterable[str]) -> None:
        """Queue stored ids and ask about every whole batch of 50 waiting."""
        self.waiting.extend(ids)
        self.ask(whole_batches=True)

    def ask(self, whole_batches: bool = False) -> None:
        """Ask videos.list about the waiting ids, 50 a call, until the quota ends."""
        count = len(self.waiting)
        if whole_batches:
            count -= count % MAX_IDS_PER_CALL
        while count > 0 and self.stop is None:
            take = min(count, MAX_IDS_PER_CALL)
            batch, self.waiting = self.waiting[:take], self.waiting[take:]
            count -= take
            self._call(batch)

    def _call(self, batch: list[str]) -> None:
        self.asked.update(batch)
        gone_before = len(self.summary.gone)
        try:
            enrich_videos(self.service, self.summary, batch)
        except QuotaExceededError as exc:
            self.stop = exc  # the next run enriches the rest
            if self.label is not None:
                self.progress.finished(self.label, "stopped by quota")
            return
        if self.label is not None:
            gone = len(self.summary.gone) - gone_before
            self.progress.advanced(self.label, len(batch),
                                   f"{len(batch) - gone} enriched, {gone} gone")

    def finish(self) -> None:
        """Ask about everything still waiting (and, with ``sweep``, what earlier runs left)."""
        self.ask()
        while self.sweep and self.stop is None:
            left = [v for v in unenriched_video_ids(self.service.store, linked_only=False)
                    if v not in self.asked]
            if not left:
                break
            self.waiting.extend(left)
            self.ask()
        if self.label is not None and self.stop is None:
            self.progress.finished(self.label, "done")
