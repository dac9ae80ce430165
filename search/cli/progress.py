"""Progress on stderr: rich bars (per query and overall) on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from indexer.progress import Progress

__all__ = ["BarProgress", "DeferredProgress", "LogProgress", "progress_reporter"]


class DeferredProgress:
    """Shows the plan only once the first step is reported.

    A run that cannot start (a rejected key, an unreachable endpoint) fails before its
    first step, so its one error line is all it prints.
    """

    def __init__(self, inner: Progress) -> None:
        self._inner = inner
        self._plan: Sequence[tuple[str, int]] | None = None

    def _flush(self) -> None:
        if self._plan is not None:
            plan, self._plan = self._plan, None
            self._inner.started(plan)

    def started(self, tasks: Sequence[tuple[str, int]]) -> None:
        """Keep the plan until something happens."""
        self._plan = list(tasks)

    def advanced(self, label: str, detail: str) -> None:
        """Show the plan (the first time), then the step."""
        self._flush()
        self._inner.advanced(label, detail)

    def finished(self, label: str, status: str) -> None:
        """Show the plan (the first time), then the end of a task."""
        self._flush()
        self._inner.finished(label, status)


class LogProgress:
    """One plain line on stderr per step: what cron mails and journald keeps."""

    def _line(self, text: str) -> None:
        typer.echo(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S} {text}", err=True)

    def started(self, tasks: Sequence[tuple[str, int]]) -> None:
        """Log the plan."""
        self._line(f"run: {len(tasks)} task(s), up to {sum(n for _, n in tasks)} step(s)")

    def advanced(self, label: str, detail: str) -> None:
        """Log a step."""
        self._line(f"{label}: {detail}")

    def finished(self, label: str, status: str) -> None:
        """Log the end of a task."""
        self._line(f"{label}: {status}")


class BarProgress:
    """rich progress bars: one per task and one overall."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._tasks: dict[str, Any] = {}
        self._overall: Any = None

    def started(self, tasks: Sequence[tuple[str, int]]) -> None:
        """Create the bars."""
        self._overall = self._bars.add_task("overall", total=sum(n for _, n in tasks) or 1)
        for label, total in tasks:
            self._tasks[label] = self._bars.add_task(label[:48], total=max(total, 1))

    def advanced(self, label: str, detail: str) -> None:
        """Advance a task's bar and the overall one."""
        if label in self._tasks:
            self._bars.update(self._tasks[label], advance=1, description=label[:48])
        if self._overall is not None:
            self._bars.update(self._overall, advance=1)

    def finished(self, label: str, status: str) -> None:
        """Close a task's bar (a pass can end before its page limit) and shrink the overall."""
        task = self._tasks.get(label)
        if task is None:
            return
        current = next(t for t in self._bars.tasks if t.id == task)
        unread = max(0, int(current.total or 0) - int(current.completed))
        self._bars.update(task, total=current.completed,
                          description=f"{label[:40]} ({status})")
        if self._overall is not None and unread:
            overall = next(t for t in self._bars.tasks if t.id == self._overall)
            self._bars.update(self._overall,
                              total=max(overall.completed, int(overall.total or 0) - unread))


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Progress]:
    """Bars when stderr is a terminal, log lines when it is not, nothing when disabled."""
    if not enabled:
        from indexer.progress import NullProgress

        yield NullProgress()
        return
    if not sys.stderr.isatty():
        yield DeferredProgress(LogProgress())
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=Console(stderr=True), transient=False) as bars:
        yield DeferredProgress(BarProgress(bars))
