"""An unwritable or unusable home, lock file or cache: one line naming the path, exit 1,
nothing stored lost.

The tests run as root, where file modes do not stop writes, so the homes are made
unusable in ways that stop root too: a home under a regular file, a home that is a file,
a lock file that is a directory, an immutable home (``chattr +i``), a read-only tmpfs
(where ``mount`` is allowed), a cache or index directory that is a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.doctor import check_corpus
from indexer.errors import ThumbsearchError
from indexer.ingest.queries import ingest_queries
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeYouTube, placeholder_jpeg

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _commands(inputs: Path) -> list[list[str]]:
    """Every command that writes, with inputs of its own outside the home."""
    inputs.mkdir(exist_ok=True)
    image = inputs / "photo.jpg"
    image.write_bytes(placeholder_jpeg())
    ids = inputs / "ids.txt"
    ids.write_text("dQw4w9WgXcQ\n")
    queries = inputs / "queries.toml"
    queries.write_text('[[queries]]\nq = "cats"\n')
    return [["ingest", "cats"], ["add", str(image)], ["add-ids", str(ids), "--no-details"],
            ["index", "build"], ["index", "rebuild"], ["refresh"],
            ["reembed", "--model", "efficientnet-lite0"], ["schedule", str(queries)]]


def _invoke(args: list[str]) -> tuple[int, str]:
    if args[0] != "schedule":
        result = runner.invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            (args, repr(result.exception))
        return result.exit_code, result.output
    # A schedule that took the failure for a passing one would wait hours for its next
    # batch: a process of its own, bounded.
    done = subprocess.run([sys.executable, "-c", "from search.cli.app import main; main()",
                           *args], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def _one_line_naming(args: list[str], path: Path) -> str:
    code, output = _invoke(args)
    assert "Traceback" not in output, (args, output)
    assert code == 1, (args, output)
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, output)
    assert str(path) in lines[0], (args, lines[0])
    return lines[0]


def _populate(settings: Settings) -> int:
    with build_service(settings, embedder=TinyEmbedder(), sleep=lambda s: None) as service:
        return ingest_queries(service, ["cats"]).new


def _intact(settings: Settings, vectors: int) -> None:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        assert service.store.counts("tiny-test")["vectors"] == vectors
        assert check_corpus(service).problems == []


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return tmp_path / "inputs"


def test_a_home_under_a_regular_file(youtube_env: FakeYouTube, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, inputs: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    home = blocker / "home"
    monkeypatch.setenv("THUMBSEARCH_HOME", str(home))
    for args in _commands(inputs):
        _one_line_naming(args, home)
    # The database elsewhere: the lock file is the first thing that cannot be made.
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for args in _commands(inputs):
        _one_line_naming(args, home)


def test_a_home_that_is_a_file(youtube_env: FakeYouTube, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch, inputs: Path) -> None:
    home = tmp_path / "home-file"
    home.write_text("a file")
    monkeypatch.setenv("THUMBSEARCH_HOME", str(home))
    for args in _commands(inputs):
        _one_line_naming(args, home)
    assert home.read_text() == "a file"


def test_a_lock_file_that_is_a_directory(youtube_env: FakeYouTube, settings: Settings,
                                         inputs: Path) -> None:
    stored = _populate(settings)
    lock = settings.home / "ingest.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    for args in _commands(inputs):
        line = _one_line_naming(args, lock)
        assert "directory" in line, line
    lock.rmdir()
    _intact(settings, stored)


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True,
                          check=False) if shutil.which("chattr") else None
    if done is None or done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr if done else 'no chattr'}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_immutable_home(youtube_env: FakeYouTube, settings: Settings, inputs: Path) -> None:
    stored = _populate(settings)
    with _immutable(settings.home):
        for args in _commands(inputs):
            _one_line_naming(args, settings.home)
    _intact(settings, stored)


@pytest.fixture
def tmpfs_home(isolated_env: Path) -> Iterator[Path]:
    """THUMBSEARCH_HOME on a tmpfs of its own (skipped where mount is refused)."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs",
                              str(isolated_env)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield isolated_env
    finally:
        if subprocess.run(["umount", str(isolated_env)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(isolated_env)], check=False)


def test_a_read_only_home(youtube_env: FakeYouTube, tmpfs_home: Path, settings: Settings,
                          inputs: Path) -> None:
    stored = _populate(settings)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs_home)], check=True)
    try:
        for args in _commands(inputs):
            line = _one_line_naming(args, tmpfs_home)
            assert "read-only" in line, line
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs_home)], check=True)
    _intact(settings, stored)


def _library_failure(settings: Settings, path: Path) -> str:
    with build_service(settings, embedder=TinyEmbedder(), sleep=lambda s: None) as service, \
            pytest.raises(ThumbsearchError) as caught:
        ingest_queries(service, ["space"])
    message = str(caught.value)
    assert "\n" not in message and str(path) in message, message
    return message


def test_a_thumbnail_cache_that_is_a_file(youtube_env: FakeYouTube, settings: Settings) -> None:
    stored = _populate(settings)
    cache = settings.thumbnail_cache_dir
    shutil.rmtree(cache)
    cache.write_text("in the way")
    _library_failure(settings, cache)
    cache.unlink()
    with build_service(settings, embedder=TinyEmbedder()) as service:
        assert service.store.counts("tiny-test")["vectors"] >= stored


def test_an_index_directory_that_is_a_file(youtube_env: FakeYouTube, settings: Settings) -> None:
    stored = _populate(settings)
    index = settings.index_dir
    shutil.rmtree(index)
    index.write_text("in the way")
    _library_failure(settings, index)
    index.unlink()
    with build_service(settings, embedder=TinyEmbedder()) as service:
        assert service.store.counts("tiny-test")["vectors"] >= stored
        service.index().save()  # the open rebuilt it from the database
        assert check_corpus(service).problems == []


def test_a_litert_cache_that_cannot_be_written(tmp_path: Path) -> None:
    from indexer.models.litert import cached_tflite

    blocker = tmp_path / "cache-file"
    blocker.write_text("in the way")
    data, path = cached_tflite(blocker / "litert", "m", "digest", lambda: b"model bytes")
    assert data == b"model bytes" and path is None  # still embeds; converted again next time
    # A damaged cached file the read-only cache cannot drop is passed over, not fatal.
    cache = tmp_path / "litert"
    cache.mkdir()
    data, path = cached_tflite(cache, "m", "digest", lambda: b"model bytes")
    assert path is not None
    path.write_bytes(b"damaged")
    from indexer.models import litert

    litert._forget("m", "digest")
    with _immutable(cache):
        data, again = cached_tflite(cache, "m", "digest", lambda: b"model bytes")
    assert data == b"model bytes" and again is None
    assert os.path.exists(path)
