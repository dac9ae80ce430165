"""Progress of long commands: timestamped lines when piped, bars on a terminal, the model load
as a step, counts in videos and images, and why a run had nothing to do."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.models import model_spec
from indexer.progress import Plan, Task
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from search.cli.progress import LogProgress
from tests.fakes.corpus import seed_corpus
from tests.fakes.embedder import StandInEmbedder
from tests.fakes.youtube import FakeYouTube

runner = CliRunner()
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")
IMAGES = 60


@pytest.fixture(autouse=True)
def stand_in_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default model's id and size without loading it (the real one is not the point)."""
    spec = model_spec(Settings.from_env().model)
    monkeypatch.setattr("indexer.service.settings_embedder", lambda *_, **__: (
        StandInEmbedder(spec.model_id, spec.dim, spec.input_size)))


def _images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (48, 36), (i * 4 % 256, 255 - i * 3 % 256, i * 11 % 256)).save(
            folder / f"img{i:03}.png")
    return folder


def _lines(text: str) -> list[str]:
    lines = text.strip().splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


def test_piped_lines_are_throttled_to_one_a_second() -> None:
    now = [0.0]
    written: list[str] = []
    log = LogProgress(clock=lambda: now[0], write=written.append)
    log.started(Plan("add", "10000 images", (Task("images", 10_000, "images"),), "images"))
    for _ in range(10_000):
        now[0] += 0.001  # 10 s in all
        log.advanced("images", 1, "stored")
    log.ended("10000 new, 0 already known, 0 failed")
    printed = _lines("\n".join(written))
    assert printed[0] == "add: 10000 images"
    assert 8 <= len(printed) <= 12  # the plan, about one a second, the totals
    assert printed[1].startswith("add: 1000/10000 images (stored)")
    assert printed[-1].startswith("add: 10000/10000 images; finished in ")


def test_add_piped_logs_the_images_and_the_model_load(
        isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _images(tmp_path / "imgs", IMAGES)
    monkeypatch.setattr("search.cli.progress.LINE_INTERVAL", 0.0)  # every count a line
    result = runner.invoke(app, ["add", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"new videos {IMAGES}, already known 0, failed 0"
    lines = _lines(result.stderr)
    model = model_spec(Settings.from_env().model).model_id
    assert lines[:2] == [f"add: {IMAGES} images", f"loading model {model}..."]
    assert re.fullmatch(r"model ready in \d+\.\d s", lines[2])
    counts = [int(m[1]) for m in (re.match(rf"add: (\d+)/{IMAGES} images", x) for x in lines)
              if m]
    assert counts == sorted(counts) and counts[-1] == IMAGES and len(counts) > 2
    assert re.fullmatch(rf"add: {IMAGES}/{IMAGES} images; finished in \d+\.\d s: {IMAGES} new, "
                        "0 already known, 0 failed", lines[-1])

    again = runner.invoke(app, ["add", str(folder)])
    assert again.exit_code == 0
    assert again.stdout.splitlines() == [
        f"new videos 0, already known {IMAGES}, failed 0",
        f"nothing to do: all {IMAGES} images are already in the corpus"]
    assert not any("loading model" in line for line in _lines(again.stderr))
    as_json = runner.invoke(app, ["add", str(folder), "--json"])
    assert as_json.stderr == ""  # --json with stderr not a terminal: no progress lines
    summary = json.loads(as_json.stdout)
    assert summary["nothing_to_do"] == f"all {IMAGES} images are already in the corpus"
    assert summary["known"] == IMAGES and summary["new"] == 0


def test_a_run_of_many_images_logs_far_fewer_lines(isolated_env: Path, tmp_path: Path) -> None:
    folder = _images(tmp_path / "imgs", 200)
    result = runner.invoke(app, ["add", str(folder)])
    assert result.exit_code == 0, result.output
    assert len(_lines(result.stderr)) < 20


def test_add_on_a_terminal_shows_a_bar(isolated_env: Path, tmp_path: Path) -> None:
    folder = _images(tmp_path / "imgs", IMAGES)
    child = (
        "import sys\n"
        "import indexer.service\n"
        "from indexer.models import model_spec\n"
        "from indexer.settings import Settings\n"
        "from tests.fakes.embedder import StandInEmbedder\n"
        "from search.cli import main\n"
        "spec = model_spec(Settings.from_env().model)\n"
        "indexer.service.settings_embedder = lambda *_, **__: StandInEmbedder(\n"
        "    spec.model_id, spec.dim, spec.input_size)\n"
        f"sys.argv = ['thumbsearch', 'add', {str(folder)!r}]\n"
        "main()\n")
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    with subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                          stderr=follower, env=env) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is gone once the child exits
                break
            if not chunk:
                break
            seen += chunk
        out = proc.stdout.read() if proc.stdout else b""
        assert proc.wait(timeout=120) == 0, seen.decode(errors="replace")
    os.close(leader)
    shown = seen.decode(errors="replace")
    assert f"{IMAGES}/{IMAGES}" in shown and "images" in shown
    assert "model ready in" in shown
    assert f"new videos {IMAGES}" in out.decode()


def test_eval_piped_logs_the_sets(isolated_env: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "set"
    for label in ("red", "blue"):
        _images(dataset / label, 3)
    result = runner.invoke(app, ["eval", str(dataset)])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stderr)
    assert lines[0] == "eval: 1 set, 6 images"
    assert lines[1].startswith("loading model ")
    assert re.fullmatch(r"eval: 6/6 images; finished in \d+\.\d s: 6 images scored "
                        r"\(\d+ embedded, \d+ from the cache\)", lines[-1])


def test_ingest_plan_counts_queries_and_videos_and_a_done_file_says_why(
        youtube_env: FakeYouTube, isolated_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", "cats", "space"])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stderr)
    assert lines[0] == "ingest: 2 queries, up to 100 videos"
    new = len(youtube_env.searches["cats"]) + len(youtube_env.searches["space"])
    assert re.fullmatch(rf"ingest: {new}/{new} videos, 2/2 queries done; finished in "
                        rf"\d+\.\d s: {new} new, 0 already known, 0 failed", lines[-1])

    queries = tmp_path / "queries.toml"
    queries.write_text('[[queries]]\nq = "cats"\n\n[[queries]]\nq = "nasa"\n')
    first = runner.invoke(app, ["ingest", "--queries-file", str(queries)])
    assert first.exit_code == 0 and "nothing to do" not in first.stdout
    again = runner.invoke(app, ["ingest", "--queries-file", str(queries)])
    assert again.exit_code == 0, again.output
    why = re.compile(r"every query's pass is done for today \(next pass after "
                     r"\d{4}-\d{2}-\d{2} 00:00 Pacific\)")
    assert why.fullmatch(again.stdout.splitlines()[-1].removeprefix("nothing to do: "))
    assert again.stdout.splitlines()[0] == "new videos 0, already known 0, failed 0"
    assert _lines(again.stderr)[0] == "ingest: no query is due (2 done for today)"
    summary = json.loads(runner.invoke(app, ["ingest", "--queries-file", str(queries),
                                             "--json"]).stdout)
    assert why.fullmatch(summary["nothing_to_do"]) and summary["new"] == 0


def test_add_ids_all_stored_says_so(youtube_env: FakeYouTube, isolated_env: Path,
                                    tmp_path: Path) -> None:
    ids = youtube_env.searches["cats"] + youtube_env.searches["space"]
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(ids) + "\n")
    first = runner.invoke(app, ["add-ids", str(listed), "--no-details"])
    assert first.exit_code == 0, first.output
    lines = _lines(first.stderr)
    assert lines[0] == f"add-ids: {len(ids)} ids, {len(ids)} to download (0 stored or gone " \
                       "already)"
    assert re.fullmatch(rf"add-ids: {len(ids)}/{len(ids)} videos; finished in \d+\.\d s: "
                        rf"{len(ids)} new, 0 already known, 0 gone, 0 failed, details 0",
                        lines[-1])
    again = runner.invoke(app, ["add-ids", str(listed), "--no-details"])
    assert again.exit_code == 0
    assert f"nothing to do: all {len(ids)} ids are already in the corpus" in again.stdout
    summary = json.loads(runner.invoke(app, ["add-ids", str(listed), "--no-details",
                                             "--json"]).stdout)
    assert summary["nothing_to_do"] == f"all {len(ids)} ids are already in the corpus"
    assert summary["known"] == len(ids)


def test_refresh_and_reembed_with_nothing_to_do_say_why(youtube_env: FakeYouTube,
                                                         isolated_env: Path) -> None:
    with build_service(Settings.from_env()) as service:
        seed_corpus(service, 5)
    refresh = runner.invoke(app, ["refresh", "--older-than", "30d"])
    assert refresh.exit_code == 0, refresh.output
    assert "nothing to do: no stored video's data is older than 30d" in refresh.stdout
    summary = json.loads(runner.invoke(app, ["refresh", "--json"]).stdout)
    assert summary["nothing_to_do"] == "no stored video's data is older than 30d"
    assert summary["refreshed"] == 0

    model = model_spec(Settings.from_env().model).model_id
    reembed = runner.invoke(app, ["reembed", "--model", model])
    assert reembed.exit_code == 0, reembed.output
    assert f"nothing to do: all 5 stored videos already have {model} vectors" in reembed.stdout
    assert "loading model" not in reembed.stderr
    summary = json.loads(runner.invoke(app, ["reembed", "--model", model, "--json"]).stdout)
    assert summary["nothing_to_do"] == f"all 5 stored videos already have {model} vectors"
    assert summary["already"] == 5


def test_similar_says_when_it_loads_the_model_and_a_stored_lookup_never_does(
        isolated_env: Path, tmp_path: Path) -> None:
    with build_service(Settings.from_env()) as service:
        stored = seed_corpus(service, 5)
    lookup = runner.invoke(app, ["similar", stored[0]])
    assert lookup.exit_code == 0, lookup.output
    assert lookup.stderr == ""
    image = _images(tmp_path / "q", 1) / "img000.png"
    by_image = runner.invoke(app, ["similar", "--image", str(image)])
    assert by_image.exit_code == 0, by_image.output
    lines = _lines(by_image.stderr)
    assert lines[0].startswith("loading model ") and lines[1].startswith("model ready in ")
