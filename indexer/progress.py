"""Progress events of long runs, counted in videos or images; the CLI shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["NullProgress", "Plan", "Progress", "Task", "plural"]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``"1 video"``, ``"2 videos"``; ``nouns`` when the plural is not ``noun + "s"``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


@dataclass(frozen=True)
class Task:
    """A part of a run: up to ``total`` items counted in ``unit`` (a plural noun: "videos").

    ``overall`` says whether its items count towards the run's overall count (the videos.list
    details of an id list do not: they are the same videos again).
    """

    label: str
    total: int
    unit: str
    overall: bool = True


@dataclass(frozen=True)
class Plan:
    """What a run is about to do: the command's ``name``, one line of ``text`` saying it
    ("2 queries, up to 100 videos"), its tasks, and ``of``, what the tasks are (plural:
    "queries"; empty when there is one task)."""

    name: str
    text: str
    tasks: tuple[Task, ...]
    unit: str  # what the overall count counts (plural)
    of: str = ""

    @property
    def total(self) -> int:
        """Items in the overall count, at most."""
        return sum(t.total for t in self.tasks if t.overall)


class Progress(Protocol):
    """Hears how a run advances: its plan, items through each task, steps of unknown length
    (loading the model), and its end."""

    def started(self, plan: Plan) -> None:
        """The run's plan."""
        ...

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """``items`` more items of task ``label`` are through (stored, known or failed), with
        what they brought."""
        ...

    def finished(self, label: str, status: str) -> None:
        """A task will take no more items in this run, and why."""
        ...

    def begin(self, text: str) -> None:
        """A step of unknown length begins ("loading model vgg16")."""
        ...

    def done(self, text: str) -> None:
        """The step under way is over ("model ready in 7.9 s")."""
        ...

    def ended(self, totals: str) -> None:
        """The run is over: what it did, in one line."""
        ...


class NullProgress:
    """Progress that goes nowhere (the default of library calls)."""

    def started(self, plan: Plan) -> None:
        """Ignore the plan."""

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """Ignore items."""

    def finished(self, label: str, status: str) -> None:
        """Ignore the end of a task."""

    def begin(self, text: str) -> None:
        """Ignore a step."""

    def done(self, text: str) -> None:
        """Ignore the end of a step."""

    def ended(self, totals: str) -> None:
        """Ignore the end of the run."""
