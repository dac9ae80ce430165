"""The ``thumbsearch`` command line: a thin typer layer over the library."""

from __future__ import annotations

from search.cli.app import app, main

__all__ = ["app", "main"]
