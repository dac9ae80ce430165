"""A full disk: a small tmpfs as THUMBSEARCH_HOME, filled so an ingest hits ENOSPC.

Each case keeps one of the three writers (the SQLite database, the thumbnail cache,
the index snapshot) on the tmpfs and moves the other two off it, so the failure lands
where the case says. The CLI must fail with one line naming the path (exit 1), lose
nothing stored, and after space is freed `doctor` is clean and a re-run completes.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app
from tests.fakes.corpus import record_figure
from tests.fakes.youtube import FakeYouTube

pytestmark = pytest.mark.slow

runner = CliRunner()
TMPFS_SIZE = "16m"
LEAVE_FREE = 48 * 1024  # room for the lock file and a little more, not for a batch
PER_PAGE = 20


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def tmpfs_home(isolated_env: Path) -> Iterator[Path]:
    """THUMBSEARCH_HOME on its own small tmpfs (skipped where mount is refused, outside CI)."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs",
         str(isolated_env)], capture_output=True, text=True, timeout=30, check=False)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield isolated_env
    finally:
        done = subprocess.run(["umount", str(isolated_env)], capture_output=True, timeout=30,
                              check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(isolated_env)], capture_output=True, timeout=30,
                           check=False)


def _fill(directory: Path, leave: int) -> Path:
    """Write a filler file until only ``leave`` bytes stay free on ``directory``'s disk."""
    filler = directory / "filler"
    stat = os.statvfs(directory)
    wanted = max(0, stat.f_bavail * stat.f_frsize - leave)
    block = b"\0" * (1024 * 1024)
    with filler.open("wb") as handle:
        while wanted > 0:
            try:
                wanted -= handle.write(block[:min(len(block), wanted)])
            except OSError as exc:  # tmpfs rounds to pages: full is as good as nearly full
                assert exc.errno == errno.ENOSPC
                break
    return filler


@pytest.mark.parametrize("target", ["database", "thumbnails", "index"])
def test_full_disk_fails_with_one_line_and_loses_nothing(
        target: str, tmpfs_home: Path, youtube_env: FakeYouTube, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmpfs_home
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    if target != "database":
        monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", f"sqlite:///{roomy / 'db.sqlite3'}")
    for name in ("thumbnails", "index"):
        if name != target:
            (roomy / name).mkdir()
            (home / name).symlink_to(roomy / name)
    where = {"database": home / "thumbsearch.sqlite3", "thumbnails": home / "thumbnails",
             "index": home / "index"}[target]

    videos = youtube_env.videos
    asked = [*youtube_env.searches["cats"], *youtube_env.searches["reuploads"][:PER_PAGE]]
    wanted = {v for v in asked
              if not (videos[v].deleted or videos[v].thumbnail_missing
                      or videos[v].corrupt_thumbnail)}
    code, output = _run("ingest", "cats", "--json")
    assert code == 0, output
    before = json.loads(output)["new"]
    filler = _fill(home, LEAVE_FREE)

    code, output = _run("ingest", "reuploads", "--per-page", str(PER_PAGE))
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1, output
    assert len(errors) == 1, output
    assert errors[0].startswith("error: no space left on device while"), errors[0]
    assert str(where) in errors[0], errors[0]
    record_figure(f"disk_full_{target}", errors[0])

    code, output = _run("stats", "--json")
    assert code == 0, output
    assert json.loads(output)["vectors"] in (before, len(wanted))  # nothing stored was lost

    filler.unlink()
    code, output = _run("doctor")
    assert code == 0, output
    code, output = _run("ingest", "reuploads", "--per-page", str(PER_PAGE), "--json")
    assert code == 0, output
    code, output = _run("doctor", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["vectors"] == report["index_size"] == report["videos"] == len(wanted), output
