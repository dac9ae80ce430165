"""Without PostgreSQL the `postgres` tests skip on a developer's machine and fail in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import BINDIR_ENV

ROOT = Path(__file__).resolve().parents[2]
ONE_TEST = "tests/store/test_postgres.py::test_the_tests_run_on_postgresql"


def _run_without_postgresql(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[BINDIR_ENV] = str(tmp_path / "no-postgresql")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           ONE_TEST], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_postgresql_skips_outside_ci(tmp_path: Path, ci: str | None) -> None:
    done = _run_without_postgresql(tmp_path, ci)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "PostgreSQL is not installed" in done.stdout


def test_missing_postgresql_fails_in_ci(tmp_path: Path) -> None:
    done = _run_without_postgresql(tmp_path, "true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "PostgreSQL is not installed" in done.stdout
