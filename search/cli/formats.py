"""The ``--format table|json|ids`` option of the commands that list videos, and ``--json``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from indexer.bounds import quote

__all__ = ["FORMATS", "Format", "FormatOption", "JsonOption", "chosen_format", "wrote"]

Format = Literal["table", "json", "ids"]
FORMATS: tuple[Format, ...] = ("table", "json", "ids")

FormatOption = Annotated[str | None, typer.Option(
    "--format", metavar="table|json|ids", show_default=False,
    help="table (default; tab-separated when piped), json, or ids: one video id a line "
         "and nothing else.")]
JsonOption = Annotated[bool, typer.Option("--json", help="The same as --format json.")]


def chosen_format(fmt: str | None, as_json: bool) -> Format:
    """The format asked for; a usage error (exit 2) for an unknown one or a clash with --json."""
    if fmt is None:
        return "json" if as_json else "table"
    for known in FORMATS:
        if fmt == known:
            if as_json and known != "json":
                raise typer.BadParameter(f"--json means --format json, not --format {fmt}",
                                         param_hint="'--format'")
            return known
    raise typer.BadParameter(f"{quote(fmt)} is not one of {', '.join(FORMATS)}",
                             param_hint="'--format'")


def wrote(path: object) -> None:
    """Name a file the command wrote, in one line on stderr."""
    typer.echo(f"wrote {path}", err=True)
