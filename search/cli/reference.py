"""The CLI reference page, docs/cli.md, written from the command tree itself.

Run ``python -m search.cli.reference > docs/cli.md`` (``make docs``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import typer

from search.cli.app import app

__all__ = ["command_tree", "commands", "main", "render"]

def command_tree() -> Any:
    """The click command behind ``search.cli.app``."""
    return typer.main.get_command(app)


def commands(root: Any | None = None) -> Iterator[tuple[str, Any, Any]]:
    """Every visible command as (path below ``thumbsearch``, command, its context), root first."""
    root = command_tree() if root is None else root

    def walk(path: str, command: Any, parent: Any) -> Iterator[tuple[str, Any, Any]]:
        name = path.rsplit(" ", 1)[-1] if path else "thumbsearch"
        ctx = command.context_class(command, info_name=name, parent=parent,
                                    **command.context_settings)
        yield path, command, ctx
        for sub_name, sub in getattr(command, "commands", {}).items():
            if not getattr(sub, "hidden", False):
                yield from walk(f"{path} {sub_name}".strip(), sub, ctx)

    yield from walk("", root, None)


def _paragraphs(text: str) -> list[str]:
    """Help text as markdown paragraphs; click's no-rewrap blocks (``\\b``) as code."""
    out = []
    for block in text.strip().split("\n\n"):
        if block.startswith("\b\n"):
            out.append("```\n" + block[2:].rstrip() + "\n```")
        elif block.strip():
            out.append(" ".join(block.split()).replace("<", "\\<"))
    return out


def _split_extra(help_text: str) -> tuple[str, str]:
    """Split click's trailing ``  [default: ...; range]`` (after two spaces) from a help."""
    text = help_text.rstrip()
    cut = text.rfind("  [")
    if text.endswith("]") and cut >= 0:
        return " ".join(text[:cut].split()), " ".join(text[cut + 3:-1].split())
    return " ".join(text.split()), ""


def _params(command: Any, ctx: Any) -> tuple[list[str], list[str]]:
    """Markdown list items for the arguments and the options, as ``-h`` shows them."""
    arguments: list[str] = []
    options: list[str] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or (param.name == "help" and ctx.parent):
            continue
        record = param.get_help_record(ctx)
        if param.param_type_name == "argument":
            name = param.make_metavar(ctx) if record is None else record[0]
            help_text, extra = _split_extra(record[1] if record else "")
            arguments.append(_item(name, help_text, extra))
        elif record is not None:
            help_text, extra = _split_extra(record[1])
            options.append(_item(record[0], help_text, extra))
    return arguments, options


def _item(names: str, help_text: str, extra: str) -> str:
    line = f"- `{names}`"
    if help_text:
        line += f": {help_text}"
    if extra:
        line += f" ({extra})"
    return line


def _section(path: str, command: Any, ctx: Any) -> str:
    title = f"thumbsearch {path}".strip()
    level = "#" * (2 + path.count(" "))
    usage = " ".join([title, *command.collect_usage_pieces(ctx)])
    parts = [f"{level} {title}", "```\n" + usage + "\n```"]
    parts += _paragraphs(command.help or "")
    arguments, options = _params(command, ctx)
    if arguments:
        parts.append("Arguments:\n\n" + "\n".join(arguments))
    if options:
        parts.append("Options:\n\n" + "\n".join(options))
    subcommands = [(name, sub) for name, sub in getattr(command, "commands", {}).items()
                   if not getattr(sub, "hidden", False)]
    if subcommands:
        parts.append("Commands:\n\n" + "\n".join(
            f"- [`{title} {name}`](#{_anchor(f'{title} {name}')}): "
            f"{sub.get_short_help_str(limit=200)}" for name, sub in subcommands))
    if command.epilog:
        parts += _paragraphs(command.epilog)
    return "\n\n".join(parts)


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, spaces to dashes, punctuation dropped."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def render() -> str:
    """The whole page, markdown."""
    sections = [_section(path, command, ctx) for path, command, ctx in commands()]
    intro = ("# Command reference\n\nWritten by `python -m search.cli.reference` (`make docs`) "
             "from the command tree itself: each command's `-h` shows the same text.")
    return "\n\n".join([intro, *sections]) + "\n"


def main() -> None:
    """Print the page."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
