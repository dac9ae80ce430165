"""What the command line imports: help loads no heavy library, a stored lookup no model.

A lookup on the default SQLite file reads through ``sqlite3`` (``indexer.store.reads``), so it
does not import SQLAlchemy either.

Each case runs the real entry point in a fresh interpreter and reports ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.service import build_service
from indexer.settings import Settings
from tests.fakes.corpus import seed_corpus

HELP_NEVER = ("numpy", "sqlalchemy", "faiss", "requests", "PIL", "tensorflow", "psycopg", "ray")
# psycopg loads only for a PostgreSQL URL; these lookups run on the default SQLite file.
LOOKUP_NEVER = ("tensorflow", "keras", "requests", "googleapiclient", "jinja2", "psycopg",
                "sqlalchemy", "alembic", "PIL", "ray")
WATCHED = sorted({*HELP_NEVER, *LOOKUP_NEVER})

_RUN = """
import json, sys
from search.cli import main
runs, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
codes = []
for argv in runs:
    sys.argv = ["thumbsearch", *argv]
    try:
        main()
        codes.append(0)
    except SystemExit as exc:
        codes.append(exc.code or 0)
print(json.dumps({"codes": codes, "loaded": [m for m in watched if m in sys.modules]}),
      file=sys.stderr)
"""


def _imports(*runs: list[str]) -> tuple[list[int], set[str], str]:
    """Exit codes of each run (in one process), the watched modules loaded, stdout."""
    done = subprocess.run([sys.executable, "-c", _RUN, json.dumps(list(runs)),
                           json.dumps(WATCHED)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["codes"], set(report["loaded"]), done.stdout


def _all_help_runs() -> list[list[str]]:
    import typer.main

    from search.cli import app

    runs: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            runs.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return [[*run, "--help"] for run in runs]


@pytest.fixture
def stored(isolated_env: Path) -> list[str]:
    with build_service(Settings.from_env()) as service:
        return seed_corpus(service, 50)


def test_help_of_every_command_imports_no_heavy_library(isolated_env: Path) -> None:
    runs = _all_help_runs()
    assert len(runs) > 10
    codes, loaded, output = _imports(*runs)
    assert codes == [0] * len(runs)
    assert "similar" in output and "Usage:" in output
    assert not loaded & set(HELP_NEVER), f"--help imported {sorted(loaded & set(HELP_NEVER))}"


def test_version_imports_no_heavy_library(isolated_env: Path) -> None:
    from importlib.metadata import version

    codes, loaded, output = _imports(["--version"], ["-V"])
    assert codes == [0, 0]
    assert output == f"thumbsearch {version('thumbsearch')}\n" * 2
    assert not loaded & set(HELP_NEVER), f"--version imported {sorted(loaded & set(HELP_NEVER))}"


def test_stored_lookup_loads_no_model_and_no_network_client(stored: list[str],
                                                             tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{stored[1]}\n{stored[2]}\n", encoding="utf-8")
    codes, loaded, output = _imports(["similar", stored[0], "--json", "-k", "3"],
                                     ["similar", "--ids-file", str(ids_file), "-k", "3"])
    assert codes == [0, 0], output
    assert f'"video_id": "{stored[0]}"' in output and f"line 2: {stored[2]}" in output
    assert {"numpy", "faiss"} <= loaded  # the lookup really ran
    assert not loaded & set(LOOKUP_NEVER), f"lookup imported {sorted(loaded & set(LOOKUP_NEVER))}"
