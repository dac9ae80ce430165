"""``similar --ids-file``: many stored videos answered in one batched index search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.errors import EmptyCorpusError
from indexer.service import Service, build_service
from indexer.settings import Settings
from search.cli import app
from search.idlist import parse_id_lines
from search.neighbours import similar_to_video, similar_to_videos
from tests.fakes.corpus import seed_corpus, video_id

runner = CliRunner()

COUNT = 300
MISSING = "dQw4w9WgXcQ"  # a valid id that is not stored


@pytest.fixture
def corpus(isolated_env: Path) -> Iterator[list[str]]:
    """A home holding COUNT stored videos with random vectors of the default model (no TF)."""
    with build_service(Settings.from_env()) as service:
        yield seed_corpus(service, COUNT)


@pytest.fixture
def service(corpus: list[str]) -> Iterator[Service]:
    with build_service(Settings.from_env()) as built:
        yield built


class _CountingIndex:
    """Delegates to the real index and counts ``search`` calls and query rows."""

    def __init__(self, index: Any) -> None:
        self._index = index
        self.calls: list[int] = []

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(len(queries))
        result: tuple[np.ndarray, np.ndarray] = self._index.search(queries, k)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)


def _write(tmp_path: Path, text: str | bytes, name: str = "ids.txt") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# -- library ------------------------------------------------------------------


@pytest.mark.usefixtures("backend")
def test_batched_answers_equal_single_answers(service: Service, corpus: list[str]) -> None:
    ids = [corpus[0], corpus[17], MISSING, corpus[299], corpus[17], corpus[150]]
    batched = similar_to_videos(service, ids, k=7)
    assert [r is None for r in batched] == [False, False, True, False, False, False]
    for video, answer in zip(ids, batched, strict=True):
        if answer is None:
            continue
        single = similar_to_video(service, video, k=7)
        assert answer.query == single.query == {"video_id": video}
        assert answer.model == single.model
        assert [n.video_id for n in answer.results] == [n.video_id for n in single.results]
        assert [n.rank for n in answer.results] == list(range(1, 8))
        assert video not in [n.video_id for n in answer.results]
        np.testing.assert_allclose([n.score for n in answer.results],
                                   [n.score for n in single.results], atol=2e-6)
        assert [(n.title, n.thumbnail_url) for n in answer.results] == \
            [(n.title, n.thumbnail_url) for n in single.results]


@pytest.mark.usefixtures("backend")
def test_batch_is_one_index_search(service: Service, corpus: list[str]) -> None:
    counting = _CountingIndex(service.require_corpus().index)
    service._index = counting  # type: ignore[assignment]
    ids = [*corpus[:40], MISSING, *corpus[:5]]
    answers = similar_to_videos(service, ids, k=3)
    assert counting.calls == [40]  # one call, one row per distinct stored video
    assert answers[40] is None and answers[41] == answers[0]


@pytest.mark.usefixtures("backend")
def test_batch_of_nothing_stored(service: Service) -> None:
    assert similar_to_videos(service, [MISSING, video_id(10**6)], k=3) == [None, None]
    assert similar_to_videos(service, [], k=3) == []


@pytest.mark.usefixtures("backend")
def test_batch_on_an_empty_corpus_is_an_error(isolated_env: Path) -> None:
    with build_service(Settings.from_env()) as built, pytest.raises(EmptyCorpusError):
        similar_to_videos(built, [MISSING], k=3)


def test_id_lines_skip_comments_and_blanks_and_keep_bad_lines() -> None:
    listed = parse_id_lines(["# header", "", f"  {MISSING}  ", "   # indented comment",
                             f"https://youtu.be/{MISSING}?t=3", "not an id!",
                             "local:0123456789abcdef"])
    assert [(e.line, e.video_id) for e in listed] == [
        (3, MISSING), (5, MISSING), (6, None), (7, "local:0123456789abcdef")]
    assert listed[2].error is not None and "neither a video id" in listed[2].error


# -- command line -----------------------------------------------------------------


@pytest.mark.usefixtures("backend")
def test_ids_file_json_mixes_answers_and_per_line_errors(corpus: list[str],
                                                         tmp_path: Path) -> None:
    path = _write(tmp_path, f"# stored videos and others\n{corpus[3]}\n\n"
                            f"https://www.youtube.com/watch?v={corpus[4]}\n{MISSING}\n"
                            "bad id!\nlocal:0123456789abcdef\n")
    result = runner.invoke(app, ["similar", "--ids-file", path, "-k", "4", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["line"] for e in entries] == [2, 4, 5, 6, 7]
    first, second, missing, bad, local = entries
    single = runner.invoke(app, ["similar", corpus[3], "-k", "4", "--json"])
    assert single.exit_code == 0, single.output
    assert {k: v for k, v in first.items() if k != "line"} == json.loads(single.stdout)
    assert second["query"] == {"video_id": corpus[4]} and len(second["results"]) == 4
    assert missing["error"] == "not_found" and missing["query"] == {"video_id": MISSING}
    assert "results" not in missing and "not in the corpus" in missing["message"]
    assert bad["error"] == "bad_id" and bad["query"] == {"text": "bad id!"}
    assert "neither a video id" in bad["message"]
    assert local["error"] == "not_found"


@pytest.mark.usefixtures("backend")
def test_ids_file_table(corpus: list[str], tmp_path: Path) -> None:
    path = _write(tmp_path, f"{corpus[1]}\n{MISSING}\n???\n")
    result = runner.invoke(app, ["similar", "--ids-file", path, "-k", "2"])
    assert result.exit_code == 0, result.output
    assert f"line 1: {corpus[1]}" in result.stdout
    assert f"line 2: not_found: {MISSING} is not in the corpus" in result.stdout
    assert "line 3: bad_id: '???'" in result.stdout
    assert result.stdout.count("score") == 1  # one table
    assert "answered 1, not in the corpus 1, bad lines 1" in result.stderr


def test_ids_file_from_stdin(corpus: list[str]) -> None:
    result = runner.invoke(app, ["similar", "--ids-file", "-", "--json", "-k", "3"],
                           input=f"{corpus[5]}\n# done\n{corpus[6]}\n")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["query"]["video_id"] for e in entries] == [corpus[5], corpus[6]]
    assert all(len(e["results"]) == 3 for e in entries)


def test_empty_ids_file(corpus: list[str], tmp_path: Path) -> None:
    path = _write(tmp_path, "# nothing yet\n\n")
    result = runner.invoke(app, ["similar", "--ids-file", path, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("DIR", "is a directory"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unreadable_ids_file_is_one_line_exit_1(isolated_env: Path, tmp_path: Path,
                                               content: str | bytes | None,
                                               message: str) -> None:
    if content is None:
        path = str(tmp_path / "missing.txt")
    elif content == "DIR":
        path = str(tmp_path)
    else:
        path = _write(tmp_path, content)
    result = runner.invoke(app, ["similar", "--ids-file", path])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("extra", [
    [MISSING],
    ["--image", "/tmp/x.png"],
    ["--html", "/tmp/x.html"],
])
def test_ids_file_with_a_single_query_is_a_usage_error(isolated_env: Path, tmp_path: Path,
                                                       extra: list[str]) -> None:
    path = _write(tmp_path, f"{MISSING}\n")
    result = runner.invoke(app, ["similar", "--ids-file", path, *extra])
    assert result.exit_code == 2, result.output
    assert "--ids-file" in result.output


@pytest.mark.usefixtures("backend")
def test_ids_file_on_an_empty_corpus(isolated_env: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, f"{MISSING}\n")
    result = runner.invoke(app, ["similar", "--ids-file", path])
    assert result.exit_code == 1
    assert "error:" in result.output and "empty" in result.output
