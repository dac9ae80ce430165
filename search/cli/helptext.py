"""Help texts: whole one-line summaries in command listings, and example blocks."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["SummaryGroup", "examples"]


def examples(*lines: str) -> str:
    """An ``Examples:`` block for a command's epilog, its lines kept as they are."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


class SummaryGroup(TyperGroup):
    """A group whose command listing shows each summary whole, wrapped to the terminal."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List the commands, each with its help's first sentence (never cut with '...')."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
