"""The ranges of the CLI's numeric options, and the check that keeps NaN out of float ones."""

from __future__ import annotations

import math

import typer

__all__ = ["MAX_RAY_WORKERS", "MAX_ROWS", "MAX_RUNS", "MAX_SEED", "MAX_WAIT", "finite"]

MAX_WAIT = 86_400  # seconds --wait may wait for the writer lock: a day
MAX_RAY_WORKERS = 1024  # embedding actors of one add-ids --ray run
MAX_RUNS = 100_000  # runs listed by `runs -n`
MAX_ROWS = 100_000  # rows (groups) listed by another command's `-n`
MAX_SEED = 2**32 - 1  # the seed range numpy and most tools accept


def finite(value: float | None) -> float | None:
    """The option's value, unless it is NaN (infinities are outside every range already).

    Every int or float option gives ``min`` and ``max`` (click refuses a value outside
    with exit 2); a float option also takes ``callback=finite``, since a float range lets
    NaN through (every comparison with NaN is false). tests/cli/test_cli_numbers.py holds a
    guard that every numeric option does both.
    """
    if value is not None and math.isnan(value):
        raise typer.BadParameter("nan is not a number")
    return value
