"""Every number the CLI takes is bounded where it is parsed; one exit-code rule holds.

Usage and range errors (click's own, options out of range, malformed numbers and
durations, numeric settings) exit 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from indexer.errors import UsageError
from indexer.service import build_service
from indexer.settings import Settings
from indexer.youtube.queryfile import parse_duration
from search.cli import app
from tests.fakes.corpus import record_figure, seed_corpus

runner = CliRunner()

HUGE = "99999999999999999999"
LONG = "9" * 5000  # past Python's int() digit limit: must not be echoed whole
VIDEO = "dQw4w9WgXcQ"


def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    children = getattr(command, "commands", None)
    if children is None:
        return [(path, command)]
    return [found for name, child in sorted(children.items())
            for found in _walk(child, [*path, name])]


def _numeric_params() -> list[tuple[list[str], Any, Any]]:
    """(command path, command, parameter) of every int or float parameter of the CLI."""
    import typer.main

    out = []
    for path, command in _walk(typer.main.get_command(app), []):
        for param in command.params:
            if param.type.name.startswith(("int", "float")):  # click: "integer", typer: "int"
                out.append((path, command, param))
    return out


_GROUPS = ("index", "watch")  # command groups: a command is two words

# Each numeric option: the words before it (other arguments valid) and its range.
INT_OPTIONS: list[tuple[list[str], str, int, int]] = [
    (["ingest", "cats"], "--pages", 1, 10),
    (["ingest", "cats"], "--per-page", 1, 50),
    (["schedule", "q.toml"], "--pages", 1, 10),
    (["schedule", "q.toml"], "--per-page", 1, 50),
    (["add-ids", "ids.txt"], "--ray-workers", 1, 1024),
    (["similar", VIDEO], "-k", 1, 1000),
    (["similar", VIDEO], "--top-k", 1, 1000),
    (["make-neardup", "src", "out"], "--variants", 1, 100),
    (["make-neardup", "src", "out"], "--seed", 0, 2**32 - 1),
    (["runs"], "-n", 1, 100_000),
    (["runs"], "--limit", 1, 100_000),
    (["duplicates"], "-n", 1, 100_000),
    (["duplicates"], "--limit", 1, 100_000),
    (["doctor"], "--sample", 0, 100_000),
    (["serve"], "--port", 0, 65535),
    (["watch", "matches"], "-n", 1, 1_000_000),
    (["watch", "matches"], "--limit", 1, 1_000_000),
    (["watch", "matches"], "--run", 1, 2**31 - 1),
]
FLOAT_OPTIONS: list[tuple[list[str], str, float, float]] = [
    (["ingest", "cats"], "--wait", 0, 86_400),
    (["add-ids", "ids.txt"], "--wait", 0, 86_400),
    (["schedule", "q.toml"], "--wait", 0, 86_400),
    (["schedule", "q.toml"], "--on-match-timeout", 1, 86_400),
    (["ingest", "cats"], "--on-match-timeout", 1, 86_400),
    (["refresh"], "--wait", 0, 86_400),
    (["index", "build"], "--wait", 0, 86_400),
    (["index", "rebuild"], "--wait", 0, 86_400),
    (["duplicates"], "--threshold", -1, 1),
    (["watch", "add", VIDEO], "--threshold", 0, 1),
]
NUMERIC_OPTIONS: list[tuple[list[str], str, float, float]] = [*INT_OPTIONS, *FLOAT_OPTIONS]
# Options whose text is a duration or a list of numbers, parsed by the command.
TEXT_OPTIONS: list[tuple[list[str], str, list[str]]] = [
    (["refresh"], "--older-than", [f"{HUGE}d", "36501d", "0d", "-1d", "0s", "30", "d", "nan",
                                   "inf", "1e9d", "30x", "٣d", f"{LONG}d", "1d" * 100, ""]),
    (["schedule", "q.toml"], "--every", [f"{HUGE}d", "5300w", "0h", "-6h", "soon", f"{LONG}s",
                                         "1.5h"]),
    (["watch", "matches"], "--since", [f"{HUGE}d", "999999w", "0x", "-1d", "soon", f"{LONG}s",
                                       "1.5h", "", "2026-13-01"]),
    *((["eval", "set"], option, [HUGE, "0", "1001", "-1", "1,a", "nan", "", ",", LONG,
                                 ",".join(["1"] * 200)]) for option in ("-k", "--top-k", "--k")),
]


def _int_values(low: int, high: int) -> list[str]:
    values = [HUGE, f"-{HUGE}", str(high + 1), str(low - 1), "ten", "1.5", "", LONG]
    if low > 0:
        values.append("0")
    return values


def _float_values(low: float, high: float) -> list[str]:
    return [HUGE, "1e400", "nan", "NaN", "inf", "-inf", str(high + 1), str(low - 1), "ten",
            "", LONG]


def _cases() -> list[tuple[list[str], str]]:
    cases = []
    for before, option, low, high in INT_OPTIONS:
        cases += [([*before, option, value], option) for value in _int_values(low, high)]
    for before, option, flow, fhigh in FLOAT_OPTIONS:
        cases += [([*before, option, value], option) for value in _float_values(flow, fhigh)]
    for before, option, values in TEXT_OPTIONS:
        cases += [([*before, option, value], option) for value in values]
    return cases


CASES = _cases()


def _assert_one_line(result: Any, code: int) -> str:
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert len(lines[0]) < 400, lines[0][:400]  # the input is quoted cut, never whole
    assert result.stdout == "", result.stdout
    return str(lines[0])


@pytest.mark.parametrize(("args", "option"), CASES,
                         ids=[" ".join(a)[:70] for a, _ in CASES])
def test_a_number_out_of_range_is_a_usage_error(args: list[str], option: str) -> None:
    line = _assert_one_line(runner.invoke(app, args), 2)
    assert option in line or option.lstrip("-") in line, line


@pytest.mark.parametrize(("before", "option", "low", "high"), NUMERIC_OPTIONS,
                         ids=[f"{b[0]} {o}" for b, o, _, _ in NUMERIC_OPTIONS])
def test_every_numeric_option_has_a_documented_upper_bound(
        before: list[str], option: str, low: float, high: float) -> None:
    found = [p for path, _, p in _numeric_params() if path == before[:len(path)]
             and option in p.opts]
    assert len(found) == 1, (before, option)
    assert (found[0].type.min, found[0].type.max) == (low, high)
    help_text = runner.invoke(app, [*before[:1 + (before[0] in _GROUPS)], "-h"]).output
    assert f"x<={high:g}" in help_text.replace(" ", "") or f"x<={high}" in help_text


def test_no_numeric_option_goes_without_bounds() -> None:
    """A guard: an int or float option added later must give min and max (or fail here)."""
    listed = {(before[0] if before[0] not in _GROUPS else " ".join(before[:2]), option)
              for before, option, _, _ in NUMERIC_OPTIONS}
    for path, command, param in _numeric_params():
        where = f"{' '.join(path)} {param.opts}"
        assert getattr(param.type, "min", None) is not None, f"{where} has no lower bound"
        assert getattr(param.type, "max", None) is not None, f"{where} has no upper bound"
        assert param.type.max < 2**62, f"{where}: an upper bound past what SQLite holds"
        assert any((" ".join(path), opt) in listed for opt in param.opts), (
            f"{where} is not covered by tests/cli/test_cli_numbers.py")
        for value in ("nan", "inf", "-inf", HUGE, f"-{HUGE}", LONG):
            with pytest.raises(typer.BadParameter):
                param.process_value(command.context_class(command), value)


@pytest.mark.parametrize("args", [
    ["similar", VIDEO, "-k", "0"],
    ["similar", VIDEO, "-k", "1001"],
    ["--no-such-option"],
    ["no-such-command"],
    ["similar", VIDEO, "-k"],
    ["similar"],
    ["ingest"],
    ["ingest", "cats", "--queries-file", "q.toml"],
    ["similar", VIDEO, "--image", "x.png"],
    ["eval"],
    ["eval", "set", "--index", "lsh"],
    ["eval", "--corpus", "--label-by", "colour"],
    ["eval", "set", "--labels", "l.csv"],
    ["eval", "--corpus"],
    ["eval", "--corpus", "--labels", "l.csv", "--label-by", "query"],
    ["make-neardup"],
    ["make-neardup", "--sample-photos"],
    ["add-ids", "ids.txt", "--ray-workers", "2"],
    ["index", "build", "--type", "lsh"],
])
def test_usage_errors_exit_2_in_one_line(args: list[str]) -> None:
    _assert_one_line(runner.invoke(app, args), 2)


def test_similar_k_zero_names_the_range() -> None:
    line = _assert_one_line(runner.invoke(app, ["similar", VIDEO, "-k", "0"]), 2)
    assert "-k" in line and "1<=x<=1000" in line


def test_no_arguments_still_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage:" in result.output and "Commands" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["similar", VIDEO], "corpus"),
    (["add", "/nonexistent/folder"], "no such file"),
    (["ingest", "cats"], "YOUTUBE_API_KEY"),
])
def test_other_user_errors_exit_1_in_one_line(args: list[str], message: str) -> None:
    line = _assert_one_line(runner.invoke(app, args), 1)
    assert message in line or message in line.lower(), line


ENV_NUMBERS = ["THUMBSEARCH_SEARCH_QUOTA", "THUMBSEARCH_UNITS_QUOTA",
               "THUMBSEARCH_MAX_IMAGE_BYTES", "THUMBSEARCH_MAX_IDS_FILE_BYTES",
               "THUMBSEARCH_MAX_QUERIES_FILE_BYTES", "THUMBSEARCH_CLAIM_LEASE"]
ENV_VALUES = ["99999999999999999999999", "-1", "nan", "inf", "1e400", "ten", "0x10", LONG]


@pytest.mark.parametrize("value", ENV_VALUES, ids=[v[:20] for v in ENV_VALUES])
@pytest.mark.parametrize("name", ENV_NUMBERS)
def test_a_numeric_setting_out_of_range_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    line = _assert_one_line(runner.invoke(app, ["stats"]), 2)
    assert name in line, line
    with pytest.raises(UsageError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(("name", "value"), [
    ("THUMBSEARCH_SEARCH_QUOTA", "1000000000"), ("THUMBSEARCH_UNITS_QUOTA", "1000000000"),
    ("THUMBSEARCH_SEARCH_QUOTA", "0"), ("THUMBSEARCH_CLAIM_LEASE", "86400"),
    ("THUMBSEARCH_CLAIM_LEASE", "0.5"), ("THUMBSEARCH_MAX_IMAGE_BYTES", str(1 << 40)),
])
def test_a_numeric_setting_at_its_bound_works(monkeypatch: pytest.MonkeyPatch, name: str,
                                               value: str) -> None:
    monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output


def test_the_largest_quota_is_charged_and_shown(isolated_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBSEARCH_UNITS_QUOTA", "1000000000")
    with build_service(Settings.from_env()) as service:
        service.prepare_for_writing()
        for _ in range(3):
            service.ledger.charge("units", 10**8)
        service.ledger.charge("units", 7 * 10**8)
        assert service.ledger.use("units").remaining == 0
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert "1000000000/1000000000 units" in result.output


def test_runs_limit_at_its_bound_reads_a_real_store(isolated_env: Path) -> None:
    with build_service(Settings.from_env()) as service:
        seed_corpus(service, 3)
    assert runner.invoke(app, ["runs", "-n", "100000"]).exit_code == 0
    _assert_one_line(runner.invoke(app, ["runs", "-n", HUGE]), 2)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30d", 30 * 86_400), ("1d12h", 36 * 3600), ("2w", 14 * 86_400), ("90m", 5400),
    ("36500d", 36_500 * 86_400), ("1s", 1), (" 6H ", 6 * 3600), ("5214w", 5214 * 604_800),
])
def test_durations_in_range_parse(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", [f"{HUGE}d", "36501d", "5215w", "0s", "-1d", "soon", "nan",
                                  f"{LONG}d", "1d" * 100, "٣d", ""])
def test_durations_out_of_range_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    assert len(str(caught.value)) < 300
    from indexer.youtube.queryfile import MAX_DURATION

    assert MAX_DURATION.days == 36_500


@pytest.mark.parametrize("within", [f'"{HUGE}d"', f"{HUGE}", '"nan"', "nan", "inf",
                                    '"36501d"', f'"{LONG}d"'])
def test_a_huge_published_within_is_one_line(tmp_path: Path, within: str) -> None:
    path = tmp_path / "q.toml"
    path.write_text(f'[[queries]]\nq = "cats"\npublished_within = {within}\n')
    line = _assert_one_line(runner.invoke(app, ["schedule", str(path), "--every", "1h"]), 1)
    assert "published_within" in line, line


def test_the_number_input_counts_are_recorded() -> None:
    record_figure("cli_number_inputs", len(CASES))
    record_figure("cli_number_options", len(_numeric_params()) + len(TEXT_OPTIONS))
    record_figure("cli_number_settings", len(ENV_NUMBERS) * len(ENV_VALUES))
    assert len(CASES) >= 200 and len(ENV_NUMBERS) * len(ENV_VALUES) >= 40


@pytest.mark.parametrize("priority", [HUGE, f"-{HUGE}", "1000001", "-1000001"])
def test_a_queries_file_priority_is_bounded(tmp_path: Path, priority: str) -> None:
    path = tmp_path / "q.toml"
    path.write_text(f'[[queries]]\nq = "cats"\npriority = {priority}\n')
    line = _assert_one_line(runner.invoke(app, ["schedule", str(path), "--every", "1h"]), 1)
    assert "priority must be a whole number between -1000000 and 1000000" in line, line


@pytest.mark.parametrize("args", [["refresh", "--older-than", f"{HUGE}d"],
                                  ["runs", "-n", HUGE], ["--no-such-option"]])
def test_the_installed_command_exits_2_in_one_line(args: list[str]) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("thumbsearch")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
