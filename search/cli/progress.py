"""Progress on stderr: rich bars on a terminal, throttled timestamped lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from indexer.progress import Plan, Progress

__all__ = ["LINE_INTERVAL", "BarProgress", "DeferredProgress", "LogProgress",
           "progress_reporter"]

#: Seconds between two progress lines of a log (its first and last lines always show).
LINE_INTERVAL = 1.0
_MAX_BARS = 8  # runs of more tasks show only the overall bar
_LABEL = 40  # characters of a task's label on its bar


class _Counts:
    """Items through each task and overall, and the tasks finished; a task that finishes
    early (a search pass that ends before its page limit) no longer counts its rest."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.tasks = {t.label: t for t in plan.tasks}
        self.done = {t.label: 0 for t in plan.tasks}
        self.overall = 0
        self.total = plan.total
        self.finished = 0
        self.started = time.monotonic()

    def counted(self, label: str) -> bool:
        """Whether the task's items count towards the overall count."""
        task = self.tasks.get(label)
        return task is None or task.overall

    def advance(self, label: str, items: int) -> None:
        """``items`` more of task ``label``."""
        self.done[label] = self.done.get(label, 0) + items
        if self.counted(label):
            self.overall += items

    def finish(self, label: str) -> None:
        """Task ``label`` is over: what it did not reach leaves the overall total."""
        self.finished += 1
        task = self.tasks.get(label)
        if task is not None and task.overall:
            self.total -= max(0, task.total - self.done.get(label, 0))

    def line(self) -> str:
        """``ingest: 50/100 videos, 1/2 queries done``."""
        plan = self.plan
        text = f"{plan.name}: {self.overall}/{max(self.total, self.overall)} {plan.unit}"
        if plan.of:
            text += f", {self.finished}/{len(plan.tasks)} {plan.of} done"
        return text

    def ended(self, totals: str) -> str:
        """``add: 250/250 images; finished in 10.2 s: 250 new, 0 already known, 0 failed``."""
        if not self.total and not self.overall:  # nothing was counted: no counts to show
            return f"{self.plan.name}: {totals}"
        seconds = time.monotonic() - self.started
        return f"{self.line()}; finished in {seconds:.1f} s: {totals}"


class DeferredProgress:
    """Shows the plan only once something happens.

    A run that cannot start (a rejected key, an unreachable endpoint) fails before its
    first step, so its one error line is all it prints.
    """

    def __init__(self, inner: Progress) -> None:
        self._inner = inner
        self._plan: Plan | None = None

    def _flush(self) -> None:
        if self._plan is not None:
            plan, self._plan = self._plan, None
            self._inner.started(plan)

    def started(self, plan: Plan) -> None:
        """Keep the plan until something happens."""
        self._plan = plan

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """Show the plan (the first time), then the items."""
        self._flush()
        self._inner.advanced(label, items, detail)

    def finished(self, label: str, status: str) -> None:
        """Show the plan (the first time), then the end of a task."""
        self._flush()
        self._inner.finished(label, status)

    def begin(self, text: str) -> None:
        """Show the plan (the first time), then the step."""
        self._flush()
        self._inner.begin(text)

    def done(self, text: str) -> None:
        """The end of the step."""
        self._flush()
        self._inner.done(text)

    def ended(self, totals: str) -> None:
        """Show the plan (the first time), then the totals."""
        self._flush()
        self._inner.ended(totals)


class LogProgress:
    """Timestamped lines on stderr, what cron mails and journald keeps: the plan, the model
    loading, at most one line of counts a ``interval`` seconds, and the totals."""

    def __init__(self, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None) -> None:
        self._interval = LINE_INTERVAL if interval is None else interval
        self._clock = clock
        self._write = write or (lambda line: typer.echo(line, err=True))
        self._counts: _Counts | None = None
        self._last = clock()

    def _line(self, text: str) -> None:
        self._last = self._clock()
        self._write(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S} {text}")

    def _throttled(self, label: str, detail: str) -> None:
        if self._counts is None or self._clock() - self._last < self._interval:
            return
        if detail and len(self._counts.plan.tasks) > 1:
            detail = f"{label[:_LABEL]}: {detail}"
        self._line(f"{self._counts.line()} ({detail})" if detail else self._counts.line())

    def started(self, plan: Plan) -> None:
        """Log the plan."""
        self._counts = _Counts(plan)
        self._line(f"{plan.name}: {plan.text}")

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """Count the items; log the counts when the last line is old enough."""
        if self._counts is not None:
            self._counts.advance(label, items)
        self._throttled(label, detail)

    def finished(self, label: str, status: str) -> None:
        """Count the task; log the counts when the last line is old enough."""
        if self._counts is not None:
            self._counts.finish(label)
        self._throttled(label, status)

    def begin(self, text: str) -> None:
        """Log the step."""
        self._line(f"{text}...")

    def done(self, text: str) -> None:
        """Log the end of the step."""
        self._line(text)

    def ended(self, totals: str) -> None:
        """Log the totals."""
        self._line(self._counts.ended(totals) if self._counts is not None else totals)


class BarProgress:
    """rich progress bars: one overall (in the plan's unit) and one a task, a spinner for a
    step of unknown length; the display starts with the first event."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._bars: Any = None
        self._counts: _Counts | None = None
        self._tasks: dict[str, Any] = {}
        self._overall: Any = None
        self._step: Any = None

    def _live(self) -> Any:
        if self._bars is None:
            self._bars = self._make()
            self._bars.start()
        return self._bars

    def close(self) -> None:
        """Stop the display, leaving its last state on the terminal."""
        if self._bars is not None:
            self._bars.stop()

    def _overall_text(self) -> str:
        counts = self._counts
        assert counts is not None
        plan = counts.plan
        return (f"{plan.name} ({counts.finished}/{len(plan.tasks)} {plan.of} done)" if plan.of
                else plan.name)

    def started(self, plan: Plan) -> None:
        """Create the bars."""
        bars = self._live()
        self._counts = _Counts(plan)
        several = len(plan.tasks) > 1
        if several:
            self._overall = bars.add_task(self._overall_text(), total=plan.total or None,
                                          unit=plan.unit)
        for task in plan.tasks:
            self._tasks[task.label] = bars.add_task(
                task.label[:_LABEL], total=task.total or None, unit=task.unit,
                visible=not several or len(plan.tasks) <= _MAX_BARS)

    def advanced(self, label: str, items: int, detail: str = "") -> None:
        """Advance a task's bar and the overall one."""
        if self._counts is None:
            return
        self._counts.advance(label, items)
        if label in self._tasks:
            self._bars.update(self._tasks[label], advance=items)
        if self._overall is not None and self._counts.counted(label):
            self._bars.update(self._overall, advance=items)

    def finished(self, label: str, status: str) -> None:
        """Close a task's bar (a pass can end before its page limit) and shrink the overall."""
        if self._counts is None:
            return
        self._counts.finish(label)
        if self._overall is not None:
            self._bars.update(self._overall, description=self._overall_text(),
                              total=max(self._counts.total, self._counts.overall) or None)
        task = self._tasks.get(label)
        if task is not None:
            done = self._counts.done.get(label, 0)
            self._bars.update(task, total=done, completed=done,
                              description=f"{label[:_LABEL]} ({status})")

    def begin(self, text: str) -> None:
        """A spinner for the step."""
        self._step = self._live().add_task(f"{text}...", total=None, unit="")

    def done(self, text: str) -> None:
        """The spinner gives way to a line saying how the step went."""
        if self._step is not None:
            self._bars.remove_task(self._step)
            self._step = None
        self._live().console.print(text, highlight=False, markup=False)

    def ended(self, totals: str) -> None:
        """Print the totals below the bars."""
        bars = self._live()
        if self._counts is not None:
            bars.console.print(self._counts.ended(totals), highlight=False, markup=False)
        else:
            bars.console.print(totals, highlight=False, markup=False)


def _rich_bars() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(finished_text=" "), TextColumn("{task.description}"),
                    BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=False,
                    auto_refresh=True)


@contextmanager
def progress_reporter(as_json: bool = False) -> Iterator[Progress]:
    """Bars when stderr is a terminal (with ``--json`` too: they never reach stdout);
    timestamped lines when it is not, except with ``--json`` (a log then holds only errors).

    Nothing is shown, and rich is not imported, until the run reports something.
    """
    if sys.stderr.isatty():
        bars = BarProgress(_rich_bars)
        try:
            yield DeferredProgress(bars)
        finally:
            bars.close()
        return
    if as_json:
        from indexer.progress import NullProgress

        yield NullProgress()
        return
    yield DeferredProgress(LogProgress())
