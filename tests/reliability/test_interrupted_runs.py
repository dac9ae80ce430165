"""A run whose process died shows as ``interrupted`` in ``thumbsearch runs``, a live one
as ``running``: by its process on this host, by its heartbeat from another host, and by
the writer lock for runs recorded before either was kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from indexer.process import process_start
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.history import list_runs
from indexer.store.schema import ingest_runs
from indexer.store.writer import writer_lock
from search.cli import app
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.ingest_child import EMBEDDING_MARKER
from tests.fakes.youtube import FakeYouTube

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0  # seconds for the child to reach its first batch
runner = CliRunner()


def _statuses() -> list[str]:
    result = runner.invoke(app, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    return [r["status"] for r in json.loads(result.output)]


def _table_statuses() -> list[str]:
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0, result.output
    return [line.split()[5] for line in result.output.splitlines()[1:]]


@pytest.mark.kill
def test_a_killed_ingest_shows_interrupted_and_a_live_one_running(
        youtube_env: FakeYouTube, isolated_env: Path, tmp_path: Path) -> None:
    phase = tmp_path / "phase"
    phase.mkdir()
    log = tmp_path / "child.log"
    argv = [sys.executable, "-m", "tests.fakes.ingest_child", "cats", "--batch-size", "1",
            "--embed-seconds", "60", "--phase-dir", str(phase)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        child = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while not (phase / EMBEDDING_MARKER).exists():  # inside its run, embedding a batch
            assert child.poll() is None, log.read_text()
            assert time.monotonic() - started < DEADLINE, log.read_text()
            time.sleep(0.05)
        assert _statuses() == ["running"]
        assert _table_statuses() == ["running"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert _statuses() == ["interrupted"]
    assert _table_statuses() == ["interrupted"]


def _one_run(settings: Settings) -> int:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        return service.store.start_run("search")


def _set(settings: Settings, run_id: int, **values: object) -> None:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.store.transact("test", lambda conn: conn.execute(
            update(ingest_runs).where(ingest_runs.c.id == run_id).values(**values)))


def _listed(settings: Settings) -> str:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        return list_runs(service.store, 5, stale_after=settings.claim_lease,
                         home=settings.home)[-1].status


def test_a_run_of_this_process_is_running(settings: Settings) -> None:
    _one_run(settings)
    assert _listed(settings) == "running"  # recorded by this (live) process


def test_a_reused_pid_does_not_keep_a_dead_run_running(settings: Settings) -> None:
    run_id = _one_run(settings)
    boot = (process_start(os.getpid()) or "").partition(":")[0]
    # Our own pid, but another process start: the process that wrote it is gone.
    _set(settings, run_id, process_start=f"{boot}:1")
    assert _listed(settings) == "interrupted"
    # Our own pid on an earlier boot of this host: gone with the restart.
    _set(settings, run_id, process_start=f"not-{boot}:1")
    assert _listed(settings) == "interrupted"


def test_another_hosts_run_is_judged_by_its_heartbeat(settings: Settings) -> None:
    run_id = _one_run(settings)
    service = build_service(settings, embedder=TinyEmbedder())
    now = service.store.now()
    service.close()
    _set(settings, run_id, host="elsewhere", pid=1, heartbeat_at=now)
    assert _listed(settings) == "running"
    _set(settings, run_id, heartbeat_at=now - timedelta(seconds=settings.claim_lease * 2))
    assert _listed(settings) == "interrupted"


def test_a_run_recorded_without_its_process_is_judged_by_the_writer_lock(
        settings: Settings) -> None:
    run_id = _one_run(settings)
    _set(settings, run_id, host=None, pid=None, process_start=None, heartbeat_at=None)
    with writer_lock(settings.home, "ingest", shared=True):
        assert _listed(settings) == "running"
    assert _listed(settings) == "interrupted"


@pytest.mark.postgres
def test_on_postgresql_an_old_run_is_judged_by_the_advisory_lock(pg_env: str) -> None:
    settings = Settings.from_env()
    run_id = _one_run(settings)
    _set(settings, run_id, host=None, pid=None, process_start=None, heartbeat_at=None)
    with build_service(settings, embedder=TinyEmbedder()) as service, writer_lock(
            settings.home / "other-host", "ingest", shared=True, engine=service.store.engine):
        assert _listed(settings) == "running"
    assert _listed(settings) == "interrupted"
