"""The command line without a model: help texts, usage errors, clear one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.settings import DEFAULT_MODEL
from search.cli import app

runner = CliRunner()


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_has_help_text() -> None:
    names = _commands()
    assert {"ingest", "add", "similar", "stats"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert len(result.output.strip().splitlines()) > 3


def _all_commands() -> list[tuple[list[str], object]]:
    import typer.main

    found: list[tuple[list[str], object]] = []

    def walk(command: object, path: list[str]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found.append(([*path, name], sub))
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_help_ends_with_examples() -> None:
    commands = _all_commands()
    assert len(commands) >= 18
    for path, _command in commands:
        result = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        tail = result.output.rstrip().split("Examples:")
        assert len(tail) == 2, f"{path}: no example block"
        examples = [line.strip() for line in tail[1].splitlines() if line.strip()]
        assert examples and all(line.startswith(("thumbsearch ", "nohup thumbsearch ",
                                                 "THUMBSEARCH_")) for line in examples), path


def test_root_help_lists_whole_one_sentence_summaries_at_80_columns() -> None:
    result = runner.invoke(app, ["-h"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:")[1]
    assert "..." not in listing
    assert all(len(line) <= 80 for line in listing.splitlines()), listing
    words = " ".join(listing.split())
    for path, command in _all_commands():
        if len(path) > 1:
            continue
        summary = command.get_short_help_str(limit=10_000)  # type: ignore[attr-defined]
        assert f"{path[0]} {summary}" in words, path
        assert summary.endswith(".") and summary.count(". ") == 0 and len(summary) <= 90, \
            summary


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0, result.output
        assert result.stdout == f"thumbsearch {version('thumbsearch')}\n"


def test_root_help_documents_environment_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("THUMBSEARCH_HOME", "THUMBSEARCH_DATABASE_URL", "YOUTUBE_API_KEY",
                 "THUMBSEARCH_YOUTUBE_ENDPOINT", "THUMBSEARCH_THUMBNAIL_BASE",
                 "THUMBSEARCH_ALLOWED_HOSTS", "THUMBSEARCH_MODEL", "Exit codes"):
        assert name in result.output


def test_readme_documents_every_command_and_variable() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in _commands():
        assert f"thumbsearch {name}" in readme
    for name in ("THUMBSEARCH_HOME", "THUMBSEARCH_ALLOWED_HOSTS", "YOUTUBE_API_KEY"):
        assert name in readme
    assert "make demo" in readme and "make test" in readme


@pytest.mark.parametrize(("args", "code", "message"), [
    (["similar", "not-an-id"], 1, "neither a video id"),
    (["similar", "https://youtu.be/short"], 1, "valid video id"),
    (["similar", "ftp://youtube.com/watch?v=dQw4w9WgXcQ"], 1, "neither a video id"),
    (["similar", "dQw4w9WgXcQ"], 1, "corpus"),
    (["similar", "--image", "/nonexistent.png"], 1, "corpus"),
    (["add", "/nonexistent/folder"], 1, "no such file"),
    (["ingest", "cats"], 1, "YOUTUBE_API_KEY"),
    (["similar"], 2, "VIDEO_ID_OR_URL"),
    (["similar", "dQw4w9WgXcQ", "-k", "0"], 2, "1<=x<=1000"),
    (["ingest", "cats", "--pages", "0"], 2, "--pages"),
    (["no-such-command"], 2, "No such command"),
])
def test_errors_are_one_line_with_exit_code(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if code == 1:
        error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1


def test_unknown_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBSEARCH_MODEL", "no-such-model")
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 1
    assert "no-such-model" in result.output


def test_stats_of_an_empty_home(isolated_env: Path) -> None:
    import json

    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["videos"], data["vectors"], data["queries"]) == (0, 0, 0)
    assert data["model"] == DEFAULT_MODEL and data["dim"] == 1280
    assert data["home"] == str(isolated_env)


def test_console_script_help_runs_without_tensorflow(isolated_env: Path) -> None:
    code = ("import sys; from search.cli import main; sys.argv=['thumbsearch','stats'];\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'stats imported tensorflow'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
