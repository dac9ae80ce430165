"""Bad input to the CLI: one clear line each, exit 1 (2 for usage errors), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.fakes.corpus import FIGURES_ENV, read_figures, record_figure, seed_corpus

runner = CliRunner()

STORED = "rAAAAAAAAAA"  # video_id(0): the first seeded video


@pytest.fixture
def corpus(isolated_env: Path) -> Path:
    """A home holding 20 stored videos with random vectors of the default model (no TF)."""
    with build_service(Settings.from_env()) as service:
        seed_corpus(service, 20)
    return isolated_env


def _queries_file(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "queries.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# (arguments, exit code, text the one error line must contain). "{tmp}" is the test's tmp_path.
CASES: list[tuple[list[str], int, str]] = [
    # video ids of the wrong length or alphabet
    (["similar", "abc"], 1, "neither a video id"),
    (["similar", "dQw4w9WgXcQQ"], 1, "neither a video id"),
    (["similar", "dQw4w9WgXc!"], 1, "neither a video id"),
    (["similar", "dQw4w9WgXcé"], 1, "neither a video id"),
    (["similar", "dQw4w9 gXcQ"], 1, "neither a video id"),
    (["similar", ""], 1, "neither a video id"),
    (["similar", "https://www.youtube.com/watch?v=short"], 1, "valid video id"),
    (["similar", "https://evil.example/watch?v=dQw4w9WgXcQ"], 1, "not a YouTube video URL"),
    (["similar", "ftp://youtube.com/watch?v=dQw4w9WgXcQ"], 1, "neither a video id"),
    (["similar", "file:///etc/passwd"], 1, "neither a video id"),
    (["similar", "javascript:alert(1)"], 1, "neither a video id"),
    # image URLs with other schemes, hosts not allowed, paths missing or directories
    (["similar", "--image", "file:///etc/passwd"], 1, "only image files and http(s) URLs"),
    (["similar", "--image", "ftp://i.ytimg.com/vi/x/mqdefault.jpg"], 1, "http(s)"),
    (["similar", "--image", "data:image/png;base64,iVBORw0KGgo="], 1, "http(s)"),
    (["similar", "--image", "gopher://127.0.0.1:70/"], 1, "http(s)"),
    (["similar", "--image", "http://127.0.0.1:9/a.jpg"], 1, "not in THUMBSEARCH_ALLOWED_HOSTS"),
    (["similar", "--image", "http://169.254.169.254/latest/meta-data/"], 1,
     "not in THUMBSEARCH_ALLOWED_HOSTS"),
    (["similar", "--image", "{tmp}/missing.png"], 1, "no such file"),
    (["similar", "--image", "{tmp}"], 1, "is a directory"),
    (["similar", "--image", "{tmp}/text.png"], 1, "not an image"),
    (["similar", "--image", "{tmp}/empty.jpg"], 1, "empty"),
    # k out of range
    (["similar", STORED, "-k", "0"], 2, "1<=x<=1000"),
    (["similar", STORED, "-k", "-5"], 2, "1<=x<=1000"),
    (["similar", STORED, "-k", "1001"], 2, "1<=x<=1000"),
    (["similar", STORED, "-k", str(10**30)], 2, "1<=x<=1000"),
    (["similar", STORED, "-k", "ten"], 2, "-k"),
    # unknown model
    (["similar", STORED, "--model", "no-such-model"], 1, "no-such-model"),
    (["similar", STORED, "--model", "../../etc/passwd"], 1, "passwd"),
    # neither or both of id and --image
    (["similar"], 2, "VIDEO_ID_OR_URL"),
    (["similar", STORED, "--image", "{tmp}/text.png"], 2, "either"),
    # local files and folders that are not there
    (["add", "{tmp}/missing"], 1, "no such file"),
    # queries files: missing, a directory, not TOML, binary, wrong types, wrong keys
    (["ingest", "--queries-file", "{tmp}/missing.toml"], 1, "queries file"),
    (["ingest", "--queries-file", "{tmp}"], 1, "queries file"),
    (["ingest", "--queries-file", "@not toml ["], 1, "not valid TOML"),
    (["ingest", "--queries-file", "@binary"], 1, "queries file"),
    (["ingest", "--queries-file", '@queries = "cats"'], 1, "table"),
    (["ingest", "--queries-file", '@[[queries]]\nq = 5'], 1, "q must be"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\npages = "three"'], 1,
     "pages must be a whole number"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\npages = 1000'], 1,
     "pages must be a whole number"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\npages = true'], 1,
     "pages must be a whole number"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\nper_page = 2.5'], 1,
     "per_page must be a whole number"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\norder = 3'], 1, "order"),
    (["ingest", "--queries-file", '@[[queries]]\nq = "cats"\nbogus = 1'], 1, "unknown key"),
    (["ingest", "--queries-file", "@"], 1, "no queries"),
    # ingest arguments
    (["ingest", "cats", "--pages", "0"], 2, "--pages"),
    (["ingest", "cats", "--per-page", "51"], 2, "--per-page"),
    (["ingest", "cats", "--wait", "-1"], 2, "--wait"),
    (["ingest"], 2, "give search queries"),
]


@pytest.mark.parametrize(("args", "code", "message"), CASES,
                         ids=[" ".join(a)[:60] for a, _, _ in CASES])
def test_bad_input_is_one_clear_line(corpus: Path, tmp_path: Path, args: list[str], code: int,
                                     message: str) -> None:
    (tmp_path / "text.png").write_text("hello, I am not a PNG")
    (tmp_path / "empty.jpg").write_bytes(b"")
    resolved = []
    for arg in args:
        if arg == "@binary":
            arg = _queries_file(tmp_path, bytes(range(256)) * 4)
        elif arg.startswith("@"):
            arg = _queries_file(tmp_path, arg[1:])
        resolved.append(arg.replace("{tmp}", str(tmp_path)))
    result = runner.invoke(app, resolved)
    output = result.output
    assert result.exit_code == code, output
    assert message in output, output
    assert "Traceback" not in output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), repr(result.exception)
    if code == 1:
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), output


def test_the_bad_input_count_is_recorded(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FIGURES_ENV, str(tmp_path / "figures.jsonl"))
    record_figure("cli_bad_inputs", len(CASES))
    # README "Reliability" quotes 48 inputs, each one line.
    assert read_figures(tmp_path / "figures.jsonl") == {"cli_bad_inputs": 48}
    assert len(CASES) >= 40


def test_a_stored_video_still_answers(corpus: Path) -> None:
    result = runner.invoke(app, ["similar", STORED, "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert '"video_id": "rAAAAAAAAAA"' in result.output
