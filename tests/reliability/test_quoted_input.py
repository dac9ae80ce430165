"""Error lines quote user input cut to a readable length (``indexer.bounds.quote``): a 50 MB
line of an ids file, a 1 MB argument, option or setting gives a short stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app

runner = CliRunner()
SHORT = 2_000  # characters: a few lines, however long the input
HUGE = "x" * 1_000_000


def _short_failure(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code != 0, result.output[:500]
    assert "Traceback" not in result.output
    assert len(result.output) < SHORT, (args[:1], len(result.output), result.output[:300])
    return result.output


def test_a_50_mb_ids_file_line_gives_a_short_stderr(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    with ids.open("w") as handle:
        handle.write("z" * 50_000_000 + "\n")
    output = _short_failure(["add-ids", str(ids), "--no-details"])
    assert "too long for a video id" in output and "z" * 100 not in output, output


@pytest.mark.parametrize("args", [
    ["similar", HUGE],
    ["similar", f"https://www.youtube.com/watch?v={HUGE}"],
    ["similar", f"https://example.com/{HUGE}"],
    ["schedule", "queries.toml", "--every", HUGE],
    ["index", "build", "--type", HUGE],
    ["eval", "--k", HUGE],
])
def test_a_huge_argument_is_quoted_short(args: list[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "queries.toml").write_text('[[queries]]\nq = "cats"\n')
    _short_failure(args)


@pytest.mark.parametrize("name", ["THUMBSEARCH_MODEL", "THUMBSEARCH_RUNTIME",
                                  "THUMBSEARCH_YOUTUBE_ENDPOINT", "THUMBSEARCH_THUMBNAIL_BASE"])
def test_a_huge_setting_is_quoted_short(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, f"gopher://{HUGE}")
    _short_failure(["similar", "dQw4w9WgXcQ"])


def test_a_huge_value_in_a_queries_file_is_quoted_short(tmp_path: Path) -> None:
    queries = tmp_path / "queries.toml"
    queries.write_text(f'[[queries]]\nq = "cats"\npublished_within = "{HUGE}"\n')
    _short_failure(["ingest", "--queries-file", str(queries)])
    queries.write_text(f'[[queries]]\nq = "cats"\nregion_code = "{HUGE}"\n')
    _short_failure(["ingest", "--queries-file", str(queries)])
