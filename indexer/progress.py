"""Progress events of long runs; the library reports them, the CLI shows them (bars or lines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["NullProgress", "Progress"]


class Progress(Protocol):
    """Hears how a run advances: tasks (one per query, or one refresh) of a known size."""

    def started(self, tasks: Sequence[tuple[str, int]]) -> None:
        """The run's tasks as (label, total steps)."""
        ...

    def advanced(self, label: str, detail: str) -> None:
        """One step of a task is done (a page, a batch), with what it brought."""
        ...

    def finished(self, label: str, status: str) -> None:
        """A task will take no more steps in this run, and why."""
        ...


class NullProgress:
    """Progress that goes nowhere (the default of library calls)."""

    def started(self, tasks: Sequence[tuple[str, int]]) -> None:
        """Ignore the task list."""

    def advanced(self, label: str, detail: str) -> None:
        """Ignore a step."""

    def finished(self, label: str, status: str) -> None:
        """Ignore the end of a task."""
