"""A Progress that records every event, to check what a run reports."""

from __future__ import annotations

from typing import Any

from indexer.progress import Plan

__all__ = ["RecordingProgress"]


class RecordingProgress:
    """Keeps the events as tuples: ("started", plan), ("advanced", label, items, detail), ..."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def started(self, plan: Plan) -> None:
        """Record the plan."""
        self.events.append(("started", plan))

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """Record the items."""
        self.events.append(("advanced", label, items, detail))

    def finished(self, label: str, status: str) -> None:
        """Record the end of a task."""
        self.events.append(("finished", label, status))

    def begin(self, text: str) -> None:
        """Record a step."""
        self.events.append(("begin", text))

    def done(self, text: str) -> None:
        """Record the end of a step."""
        self.events.append(("done", text))

    def ended(self, totals: str) -> None:
        """Record the totals."""
        self.events.append(("ended", totals))

    @property
    def plan(self) -> Plan:
        """The plan the run started with."""
        plan: Plan = next(e[1] for e in self.events if e[0] == "started")
        return plan

    def items(self, label: str) -> int:
        """Items reported through task ``label``."""
        return sum(e[2] for e in self.events if e[0] == "advanced" and e[1] == label)

    def kinds(self) -> list[str]:
        """The events' kinds, in order."""
        return [e[0] for e in self.events]
