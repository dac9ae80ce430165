"""Tables on stdout: a rich table on a terminal, tab-separated plain text when piped."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import typer

from search.strength import strength

__all__ = ["Column", "echo_table", "human_size", "human_time", "on_terminal"]

Kind = Literal["text", "title", "id", "number", "score"]
Cell = str | int | float | None

_SCORE_STYLES = {"strong": "green", "medium": "yellow", "weak": "dim"}


@dataclass(frozen=True)
class Column:
    """One column: its header and how its cells are shown.

    ``kind``: ``id`` (never cut nor wrapped), ``number`` (right-aligned), ``score`` (4
    decimals, coloured by strength on a terminal), ``title`` (wrapped at words within its
    ``share`` of the terminal's width) or ``text`` (wraps). ``piped_only`` columns are left
    out on a terminal (long values, such as URLs, that a person reads elsewhere).
    """

    header: str
    kind: Kind = "text"
    piped_only: bool = False
    share: int = 1  # a title column's share of the width left over by the others


def on_terminal() -> bool:
    """True when stdout is a terminal (a person reads it), False when piped or redirected."""
    return sys.stdout.isatty()


def human_time(moment: datetime | None) -> str:
    """A time as ``2024-02-26 06:10`` in the local zone (``-`` when unknown; naive is UTC)."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:  # the store's naive times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def human_size(size: int | None) -> str:
    """A byte count as ``12.3 MiB`` (binary units; ``-`` when unknown)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _text(column: Column, value: Cell) -> str:
    if value is None:
        return "-"
    if column.kind == "score" and isinstance(value, float):
        return f"{value:.4f}"
    # One row a line: control characters (tabs, newlines) in stored titles become spaces.
    return "".join(c if c.isprintable() else " " for c in str(value))


def echo_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
               group_by: int | None = None) -> None:
    """Print ``rows`` under a header row: rich on a terminal, else tab-separated lines.

    ``group_by``: the index of a column whose runs of equal values form groups; on a
    terminal a rule separates them and the value shows on each group's first row only.
    """
    if not on_terminal():
        typer.echo("\t".join(c.header for c in columns))
        for row in rows:
            typer.echo("\t".join(_text(c, v) for c, v in zip(columns, row, strict=True)))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = [i for i, c in enumerate(columns) if not c.piped_only]
    titles = [i for i in shown if columns[i].kind == "title"]
    # With title columns the table takes the terminal's width, shared out by their shares.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  expand=bool(titles))
    for i in shown:
        column = columns[i]
        if column.kind == "id":  # as wide as its longest value: never cut
            widest = max((len(_text(column, row[i])) for row in rows), default=0)
            table.add_column(column.header, no_wrap=True, min_width=widest)
        elif column.kind in ("number", "score"):
            table.add_column(column.header, justify="right", no_wrap=True)
        elif column.kind == "title":
            table.add_column(column.header, ratio=column.share, min_width=8)
        else:  # shrinks first when the table is wider than the terminal
            table.add_column(column.header, overflow="fold")
    for number, row in enumerate(rows):
        cells = []
        follows = group_by is not None and number and rows[number - 1][group_by] == row[group_by]
        last = group_by is not None and (number + 1 == len(rows)
                                         or rows[number + 1][group_by] != row[group_by])
        for i in shown:
            text = "" if follows and i == group_by else _text(columns[i], row[i])
            value = row[i]
            style = (_SCORE_STYLES[strength(value)]
                     if columns[i].kind == "score" and isinstance(value, float) else "")
            # titles wrap at words, so their ends ("(reupload 1)") stay in sight
            cells.append(Text(text, style=style, overflow="fold"))
        table.add_row(*cells, end_section=bool(last))
    Console(highlight=False, soft_wrap=False).print(table)
