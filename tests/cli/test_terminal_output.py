"""What people and pipes see: rich tables on a terminal, plain tab-separated text when piped.

The terminal cases run the real command under a pseudo-terminal 80 columns wide.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.cli.titled_corpus import ORIGINALS, REUPLOADS, seed_titled_corpus

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")
BOX = set("─│┌┐└┘├┤┬┴┼━┃╇╈╋═║")
runner = CliRunner()


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """One home holding the titled corpus, shared by the tests of this module (read only)."""
    home = tmp_path_factory.mktemp("titled") / "home"
    env = {"THUMBSEARCH_HOME": str(home)}
    with build_service(Settings.from_env(env)) as service:
        ids = seed_titled_corpus(service)
        for status in ("done", "quota"):
            run = service.store.start_run("queries")
            service.store.finish_run(run, status, {
                "queries": 2, "pages": 6, "new": 340, "known": 12, "failed": [],
                "quota": {"search": 6, "units": 7},
                "per_query": {"cats": {"pages": 2}, "dogs in long query words": {"pages": 4}}})
    yield home, ids


@pytest.fixture
def home(corpus_home: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("THUMBSEARCH_HOME", str(corpus_home[0]))
    return corpus_home[0]


@pytest.fixture
def ids(corpus_home: tuple[Path, list[str]], home: Path) -> list[str]:
    return corpus_home[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "TERM": "xterm-256color",
            "NO_COLOR": ""}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from search.cli import main; main()", *args]


def on_pty(*args: str) -> tuple[int, str]:
    """Run the command with stdout on a pseudo-terminal: exit code, what it printed."""
    main, child = os.openpty()
    env = {k: v for k, v in _env().items() if k != "NO_COLOR"}
    process = subprocess.Popen(_command(*args), stdout=child, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    code = process.wait(timeout=120)
    return code, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def piped(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command with stdout and stderr piped."""
    env = {k: v for k, v in _env().items() if k != "NO_COLOR"}
    return subprocess.run(_command(*args), input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)


def _visible_lines(text: str) -> list[str]:
    return ANSI.sub("", text).splitlines()


# -- terminal ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["similar", "rAAAAAAAAAA", "-k", "8"],
    ["duplicates"],
    ["runs"],
    ["models"],
    ["stats", "-v"],
    ["doctor", "-v"],
])
def test_a_terminal_table_fits_80_columns_under_its_header(ids: list[str],
                                                           args: list[str]) -> None:
    code, out = on_pty(*args)
    assert code == 0, out
    lines = _visible_lines(out)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    header = next(line for line in lines if line.strip())
    if args[0] == "doctor":  # the verdict comes first, the table after it
        assert header.startswith("ok: ")
        header = lines[1]
    first_word = {"similar": "#", "duplicates": "group", "runs": "id", "models": "model",
                  "stats": "figure", "doctor": "check"}[args[0]]
    assert header.split()[0] == first_word, header
    assert "\t" not in out


def test_similar_on_a_terminal_colours_scores_and_wraps_titles(ids: list[str]) -> None:
    code, out = on_pty("similar", ids[0], "-k", "8")
    assert code == 0, out
    lines = _visible_lines(out)
    rows = [line for line in lines if re.search(r"\brA{4}\w{6}\b", line)]  # wrapped: no id
    assert len(rows) == 8
    reuploads = [ids[n * ORIGINALS] for n in range(1, REUPLOADS + 1)]
    for row, video in zip(rows[:REUPLOADS], reuploads, strict=True):
        assert video in row  # the id whole
        score = float(row.split()[1])
        assert score >= 0.92
    assert re.search(r"\x1b\[32m\s*0\.9\d\d\d", out), "a strong score is green"
    assert re.search(r"\x1b\[2m\s*-?0\.\d\d\d\d", out), "a weak score is dim"
    assert "─" in out  # the header's rule
    # the titles wrap at words: each re-upload's title ends in sight, on a later line
    assert all(f"(reupload {n})" in ANSI.sub("", out) for n in range(1, REUPLOADS + 1))
    assert "…" not in ANSI.sub("", out)


def test_duplicates_on_a_terminal_name_each_group_once(ids: list[str]) -> None:
    code, out = on_pty("duplicates")
    assert code == 0, out
    lines = _visible_lines(out)
    # a group's number starts its first row (wrapped title lines hold no id)
    numbered = [line.split()[0] for line in lines[2:] if any(v in line for v in ids)]
    assert [n for n in numbered if n.isdigit() and len(n) == 1] == ["1", "2", "3", "4"]
    assert sum(video in out for video in ids) == len(ids)


# -- piped --------------------------------------------------------------------------------


def test_similar_piped_is_plain_tab_separated_with_whole_titles(ids: list[str]) -> None:
    done = piped("similar", ids[0], "-k", "8")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and not BOX & set(done.stdout)
    lines = done.stdout.splitlines()
    assert lines[0].split("\t") == ["#", "score", "video id", "title", "channel", "thumbnail"]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 8 and all(len(row) == 6 for row in rows)
    assert [row[0] for row in rows] == [str(n) for n in range(1, 9)]
    assert rows[0][2] == ids[ORIGINALS] and rows[0][3].endswith("(reupload 1)")
    assert all(0.92 <= float(row[1]) <= 1.0 for row in rows[:REUPLOADS])
    assert rows[0][5] == f"https://i.ytimg.com/vi/{ids[ORIGINALS]}/mqdefault.jpg"


def test_duplicates_piped_has_a_header_and_every_video(ids: list[str]) -> None:
    done = runner.invoke(app, ["duplicates"])  # not a terminal either
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split("\t") == ["group", "score", "video id", "published", "channel",
                                    "title"]
    rows = [line.split("\t") for line in lines[1:]]
    assert sorted(row[2] for row in rows) == sorted(ids)
    assert [row[0] for row in rows] == [str(1 + n // (REUPLOADS + 1)) for n in range(len(ids))]
    assert sum(row[5].endswith(f"(reupload {REUPLOADS})") for row in rows) == ORIGINALS
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row[3]) for row in rows)
    limited = runner.invoke(app, ["duplicates", "-n", "2"])
    assert len(limited.stdout.splitlines()) == 1 + 2 * (REUPLOADS + 1)


def test_ids_of_one_command_feed_another(ids: list[str]) -> None:
    neighbours = piped("similar", ids[0], "-k", "3", "--format", "ids")
    assert neighbours.returncode == 0, neighbours.stderr
    assert neighbours.stdout.splitlines() == [ids[n * ORIGINALS] for n in (1, 2, 3)]
    answered = piped("similar", "--ids-file", "-", "-k", "2", "--json",
                     stdin=neighbours.stdout)
    assert answered.returncode == 0, answered.stderr
    entries = json.loads(answered.stdout)
    assert [e["query"]["video_id"] for e in entries] == neighbours.stdout.split()
    assert all(len(e["results"]) == 2 for e in entries)

    groups = piped("duplicates", "--format", "ids")
    assert groups.returncode == 0, groups.stderr
    blocks = groups.stdout.strip("\n").split("\n\n")
    assert len(blocks) == ORIGINALS and sorted(groups.stdout.split()) == sorted(ids)
    again = piped("similar", "--ids-file", "-", "-k", "1", "--format", "ids",
                  stdin=groups.stdout)
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.split()) == len(ids)
    assert f"answered {len(ids)}, not in the corpus 0, bad lines 0" in again.stderr


def test_format_ids_of_an_ids_file_names_unanswered_lines_on_stderr(ids: list[str]) -> None:
    result = runner.invoke(app, ["similar", "--ids-file", "-", "-k", "2", "--format", "ids"],
                           input=f"{ids[1]}\nnot an id\ndQw4w9WgXcQ\n{ids[2]}\n")
    assert result.exit_code == 0, result.output
    blocks = result.stdout.strip("\n").split("\n\n")
    assert [len(block.split()) for block in blocks] == [2, 2]
    assert "line 2: bad_id" in result.stderr and "line 3: not_found" in result.stderr


@pytest.mark.parametrize("args", [["similar", "rAAAAAAAAAA"], ["duplicates"]])
def test_json_and_another_format_is_a_usage_error(ids: list[str], args: list[str]) -> None:
    for extra in (["--json", "--format", "table"], ["--format", "ids", "--json"],
                  ["--format", "csv"]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2, result.output
        assert result.stdout == "" and result.stderr.startswith("error: ")
        assert "--format" in result.stderr and len(result.stderr.splitlines()) == 1
    same = runner.invoke(app, [*args, "--json", "--format", "json"])
    assert same.exit_code == 0 and json.loads(same.stdout)


def test_runs_and_models_piped(ids: list[str]) -> None:
    runs = runner.invoke(app, ["runs"])
    lines = runs.stdout.splitlines()
    assert lines[0].split("\t")[:5] == ["id", "kind", "started", "secs", "status"]
    assert sorted(line.split("\t")[4] for line in lines[1:]) == ["done", "quota"]
    assert lines[1].split("\t")[-1] == "cats:2, dogs in long query words:4"
    models = runner.invoke(app, ["models"])
    assert models.stdout.splitlines()[0] == "model\tdim\tinput\tweights\tavailable here"


# -- stats and doctor -----------------------------------------------------------------------


def test_stats_says_it_in_user_terms_and_internals_when_verbose(ids: list[str]) -> None:
    plain = runner.invoke(app, ["stats"])
    assert plain.exit_code == 0, plain.output
    figures = dict(line.split("\t", 1) for line in plain.stdout.splitlines()[1:])
    assert figures["videos"] == figures["vectors"] == str(len(ids))
    assert figures["health"] == "ok"
    assert re.fullmatch(r"database [\d.]+ (B|KiB|MiB), index [\d.]+ (B|KiB|MiB), "
                        r"thumbnails 0 B", figures["disk"]), figures["disk"]
    assert re.search(r"resets \d{4}-\d\d-\d\d \d\d:\d\d$", figures["quota"])
    for word in ("snapshot", "watermark", "bytes a vector", "IDMap2"):
        assert word not in plain.stdout
    verbose = runner.invoke(app, ["stats", "--verbose"]).stdout
    for word in ("snapshot", "watermark", "bytes a vector", "IDMap2"):
        assert word in verbose


def test_stats_json_has_machine_values(ids: list[str], home: Path) -> None:
    data = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    resets = datetime.fromisoformat(data["quota"]["resets"])
    assert resets.tzinfo is not None and resets.utcoffset() is not None
    assert (resets.hour, resets.minute) == (0, 0)  # midnight Pacific
    assert 0 < (resets - datetime.now(resets.tzinfo)).total_seconds() <= 25 * 3600
    # The file and its write-ahead log, measured while the command had them open.
    assert isinstance(data["disk"]["database"], int)
    assert data["disk"]["database"] >= (home / "thumbsearch.sqlite3").stat().st_size // 2 > 0
    assert data["disk"]["index"] > 0 and data["disk"]["thumbnails"] == 0
    assert data["memory"]["index"] == data["index"]["memory_bytes"]
    assert data["health"] == "ok" and data["videos"] == len(ids)
    assert isinstance(data["quota"]["search"]["used"], int)


def test_doctor_gives_its_verdict_first(ids: list[str]) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "ok: the database and the index agree"
    assert lines[1] == "check\tresult"
    checks = dict(line.split("\t", 1) for line in lines[2:])
    assert checks["database"] == f"{len(ids)} videos, {len(ids)} with a vector"
    assert "watermark" not in result.stdout
    assert "watermark" in runner.invoke(app, ["doctor", "-v"]).stdout


# -- files written ----------------------------------------------------------------------------


def test_every_file_written_is_named_on_stderr(ids: list[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", "http://127.0.0.1:9/vi")
    page, sheet, groups = tmp_path / "a.html", tmp_path / "b.png", tmp_path / "d" / "g.html"
    result = runner.invoke(app, ["similar", ids[0], "-k", "2", "--html", str(page),
                                 "--sheet", str(sheet), "--format", "ids"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"wrote {page}", f"wrote {sheet}"]
    assert page.stat().st_size and sheet.stat().st_size
    assert result.stdout.split() == [ids[ORIGINALS], ids[2 * ORIGINALS]]
    result = runner.invoke(app, ["duplicates", "--html", str(groups), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"wrote {groups}"] and groups.exists()
    assert len(json.loads(result.stdout)["groups"]) == ORIGINALS
