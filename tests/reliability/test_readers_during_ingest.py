"""Readers during a write: `similar` and `stats` run again and again while an ingest writes.

The writer is the real `thumbsearch ingest` in a subprocess (real model); the readers
are the CLI in this process. Every read must succeed and see a consistent corpus
(counts never going down, index equal to the database at the end). A second writer
is tested in test_schedule.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app
from tests.fakes.corpus import bulk_catalogue, record_figure
from tests.fakes.youtube import FakeYouTube

pytestmark = pytest.mark.slow

runner = CliRunner()
VIDEOS = 200
DEADLINE = 240.0  # seconds: the writer must be done by then


def _read(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def test_similar_and_stats_succeed_while_an_ingest_writes(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    videos, searches = bulk_catalogue(VIDEOS)
    searches["seed"] = searches["bulk"][:3]
    with FakeYouTube(videos, searches) as fake:
        env = {"YOUTUBE_API_KEY": fake.api_key, "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
               "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
               "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _read("ingest", "seed", "--json")
        probe = searches["seed"][0]
        exe = Path(sys.executable).with_name("thumbsearch")
        writer = subprocess.Popen(
            [str(exe), "ingest", "bulk", "--pages", str(VIDEOS // 50), "--per-page", "50",
             "--json"], env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        reads = seen_growing = 0
        last = 3
        start = time.monotonic()
        try:
            while writer.poll() is None and time.monotonic() - start < DEADLINE:
                stats = json.loads(_read("stats", "--json"))
                assert stats["vectors"] >= last
                # Counts and the index are two reads: a commit may land between them.
                assert stats["index"]["size"] >= 3
                seen_growing += stats["vectors"] > last
                last = stats["vectors"]
                found = json.loads(_read("similar", probe, "-k", "5", "--json"))
                assert len(found["results"]) >= min(5, last - 1)
                reads += 2
        finally:
            if writer.poll() is None:
                writer.kill()
            out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert json.loads(out)["new"] == VIDEOS - 3
    final = json.loads(_read("stats", "--json"))
    assert final["vectors"] == final["index"]["size"] == VIDEOS
    assert reads >= 10 and seen_growing >= 1, (reads, seen_growing)
    record_figure("readers_during_ingest", {"reads": reads, "saw_growth": seen_growing,
                                            "seconds": round(time.monotonic() - start, 1)})
