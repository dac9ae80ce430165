"""README.md and docs/*.md kept in step with the CLI, the settings, the Makefile and the files."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from indexer.settings import Settings
from search.cli.reference import command_tree, render
from tests.fakes.corpus import FIGURES_ENV

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 260

# Option names a change introduces; the docs may name them before it lands.
PENDING_OPTIONS: dict[str, set[str]] = {}
# Pictures a change writes; the links may point at them before they exist.
PENDING_FILES: set[str] = set()
# Not settings: read by the test harness only (documented in docs/reliability.md).
HARNESS_VARIABLES = {FIGURES_ENV}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"(?:^|(?<=[\s/(]))thumbsearch(?=\s)")
_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|\S+")
_STOP = {"|", "||", "&&", ";", ">", ">>", "<", "&", "#", "2>&1"}
_MAKE = re.compile(r"^\s*(?:\$\s+)?(?:[A-Z_]+=\S*\s+)*make\s+([a-z][\w.-]*)")
_SETTING = re.compile(r"\bTHUMBSEARCH_[A-Z0-9_]*[A-Z0-9]")
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\.\.)?$")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _code(text: str) -> Iterator[str]:
    """The code of a page: each fenced block's lines (continuations joined), each inline span."""
    for block in _FENCE.findall(text):
        yield from block.replace("\\\n", " ").splitlines()
    yield from _INLINE.findall(_FENCE.sub("", text))


def _invocations(line: str) -> Iterator[list[str]]:
    """The words after each `thumbsearch` of a line, up to a shell separator or comment."""
    for match in _COMMAND.finditer(line):
        words = []
        for token in _TOKEN.findall(line[match.end():]):
            if token in _STOP or token.startswith("#") or token.startswith(">"):
                break
            words.append(token.strip("[]()"))
        yield [w for w in words if w]


def _options(command: Any, ctx: Any) -> tuple[set[str], dict[str, bool]]:
    """A command's visible option names, and whether each takes a value."""
    names: set[str] = set(ctx.help_option_names)
    takes_value: dict[str, bool] = {}
    for param in command.get_params(ctx):
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        for name in (*param.opts, *param.secondary_opts):
            names.add(name)
            takes_value[name] = not (param.is_flag or param.count)
    return names, takes_value


def _is_option(word: str) -> bool:
    return word.startswith("-") and word not in ("-", "--") and not re.match(r"-\d", word)


def check_invocation(words: list[str], pending: Mapping[str, set[str]]) -> str | None:
    """What is wrong with `thumbsearch WORDS` (an unknown command or option), or None."""
    command = command_tree()
    ctx = command.context_class(command, info_name="thumbsearch", **command.context_settings)
    path = ["thumbsearch"]
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            break
        names, takes_value = _options(command, ctx)
        if _is_option(word):
            name = word.split("=", 1)[0]
            if name not in names and name not in pending.get(" ".join(path[1:]), set()):
                return f"`{' '.join(path)}` has no option {name}"
            skip = takes_value.get(name, False) and "=" not in word and index + 1 < len(words) \
                and not words[index + 1].startswith("--")
            index += 2 if skip else 1
            continue
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            index += 1  # an argument of the command
            continue
        if _PLACEHOLDER.match(word):
            return None  # a usage line: `thumbsearch [OPTIONS] COMMAND [ARGS]...`
        if word not in subcommands or getattr(subcommands[word], "hidden", False):
            return f"`{' '.join(path)}` has no command {word!r}"
        command = subcommands[word]
        ctx = command.context_class(command, info_name=word, parent=ctx,
                                    **command.context_settings)
        path.append(word)
        index += 1
    return None


def _setting_names() -> set[str]:
    """Every environment variable Settings.from_env reads."""
    read: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

    Settings.from_env(Recording(THUMBSEARCH_HOME="/nonexistent"))
    return read


def test_cli_reference_page_is_the_generators_output() -> None:
    page = ROOT / "docs" / "cli.md"
    assert page.exists(), "docs/cli.md is missing: run `make docs`"
    assert page.read_text() == render(), (
        "docs/cli.md is stale: run `make docs` (python -m search.cli.reference > docs/cli.md)")


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_commands_and_options_named_in_the_docs_exist(page: Path) -> None:
    wrong = []
    for line in _code(page.read_text()):
        for words in _invocations(line):
            problem = check_invocation(words, PENDING_OPTIONS)
            if problem:
                wrong.append(f"{_rel(page)}: {problem} (in `{line.strip()}`)")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_settings_named_in_the_docs_exist(page: Path) -> None:
    real = _setting_names() | HARNESS_VARIABLES
    wrong = sorted({name for name in _SETTING.findall(page.read_text()) if name not in real})
    assert not wrong, f"{_rel(page)} names settings that do not exist: {', '.join(wrong)}"


def test_every_setting_is_documented() -> None:
    page = ROOT / "docs" / "configuration.md"
    text = page.read_text()
    missing = sorted(name for name in _setting_names() if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not document: {', '.join(missing)}"


def _make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.$()/ -]+):(?!=)", line)
        if match and not line.startswith("\t"):
            targets.update(match[1].split())
    return targets


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_make_targets_named_in_the_docs_exist(page: Path) -> None:
    targets = _make_targets()
    wrong = sorted({name for line in _code(page.read_text())
                    for name in _MAKE.findall(line.strip()) if name not in targets})
    assert not wrong, f"{_rel(page)} names make targets the Makefile lacks: {', '.join(wrong)}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_point_to_files(page: Path) -> None:
    wrong = []
    for target in _LINK.findall(_INLINE.sub("", _FENCE.sub("", page.read_text()))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists() and _rel(path) not in PENDING_FILES:
            wrong.append(f"{_rel(page)}: link to {target} (no file {_rel(path)})")
    assert not wrong, "\n".join(wrong)


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"


@pytest.mark.parametrize(("words", "problem"), [
    (["similar", "-k", "4", "--", "-abcDEF1234"], None),
    (["index", "build", "--type", "ivf"], None),
    (["add-ids", "ids.txt", "--ray=auto", "--json"], None),
    (["similar", "--no-such-option"], "`thumbsearch similar` has no option --no-such-option"),
    (["no-such-command"], "`thumbsearch` has no command 'no-such-command'"),
    (["index", "compact"], "`thumbsearch index` has no command 'compact'"),
])
def test_the_checker_itself(words: list[str], problem: str | None) -> None:
    assert check_invocation(words, {}) == problem
