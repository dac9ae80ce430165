"""The summary an ingest run reports (and stores with its run record)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from indexer.ingest.pipeline import StageTimes
from indexer.records import Failure

__all__ = ["IngestSummary"]


@dataclass
class IngestSummary:
    """Counts of one ingest run; ``stopped`` holds the quota message when it ended early."""

    queries: int = 0
    pages: int = 0
    new: int = 0
    known: int = 0
    failed: list[Failure] = field(default_factory=list)
    search_calls: int = 0
    videos_calls: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    stopped: str | None = None
    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)  # by query label
    enriched: int = 0  # videos given videos.list details
    refreshed: int = 0  # stored videos whose metadata was fetched again
    gone: list[str] = field(default_factory=list)  # videos YouTube no longer has
    pruned: int = 0  # gone videos deleted with their vectors
    marked: int = 0  # stored videos found missing for the first time (refresh)
    unmarked: int = 0  # marked videos videos.list returned again (refresh)
    suspect_batches: int = 0  # videos.list answers that left out every id asked for
    confirmed: dict[str, str] = field(default_factory=dict)  # missing twice a day apart: title
    skipped: dict[str, int] = field(default_factory=dict)  # API answer items dropped, by why

    def count_skipped(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        """Add the skips a YouTube client counted between two of its ``skipped`` readings."""
        for reason, total in after.items():
            if total > before.get(reason, 0):
                self.skipped[reason] = self.skipped.get(reason, 0) + total - before.get(reason, 0)
    ignored_fields: list[str] = field(default_factory=list)  # bad .info.json fields left out
    nothing_to_do: str | None = None  # why the run had nothing to do, when it had not
    run_id: int | None = None  # the run's record (ingest_runs)
    matches: int = 0  # re-uploads of watched items this run recorded (indexer.ingest.watch)
    watched: int = 0  # watched items the run checked against

    def totals(self) -> str:
        """What the run stored, in one line: ``12 new, 88 already known, 0 failed``."""
        line = f"{self.new} new, {self.known} already known, {len(self.failed)} failed"
        line += self.matches_part()
        return line + ("; stopped by the quota" if self.stopped else "")

    def matches_part(self) -> str:
        """``, 2 watch matches`` when something is watched (else nothing), for summary lines."""
        if not (self.watched or self.matches):
            return ""
        return f", {self.matches} watch match{'es' if self.matches != 1 else ''}"

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``ingest --json`` and ``add --json``.

        ``ignored_fields`` is there only when ``add`` left out bad .info.json fields, and
        ``nothing_to_do`` only when the run had nothing to do (it says why); ``run_id``
        names the run (``thumbsearch runs``), ``watch_matches`` counts the re-uploads of
        watched items it recorded (``thumbsearch watch matches``).
        """
        out: dict[str, Any] = {
            "queries": self.queries,
            "pages": self.pages,
            "new": self.new,
            "known": self.known,
            "failed": [{"video_id": f.video_id, "reason": f.reason} for f in self.failed],
            "api_calls": {"search": self.search_calls, "videos": self.videos_calls},
            "skipped": dict(self.skipped),
            "run_id": self.run_id,
            "watch_matches": self.matches,
        }
        if self.ignored_fields:
            out["ignored_fields"] = list(self.ignored_fields)
        if self.nothing_to_do:
            out["nothing_to_do"] = self.nothing_to_do
        return out

    def record(self) -> dict[str, Any]:
        """What is stored with the run: the JSON shape plus stage times and the stop reason."""
        return {**self.to_json(), "stopped": self.stopped, "per_query": self.per_query,
                "quota": {"search": self.search_calls, "units": self.videos_calls},
                "enriched": self.enriched, "refreshed": self.refreshed,
                "gone": len(self.gone), "pruned": self.pruned, "marked": self.marked,
                "unmarked": self.unmarked, "suspect_batches": self.suspect_batches,
                "confirmed": len(self.confirmed),
                "seconds": {"load": round(self.times.load, 3), "embed": round(self.times.embed, 3),
                            "write": round(self.times.write, 3),
                            "wall": round(self.times.wall, 3)}}
