"""The product on PostgreSQL: the same code and Alembic revisions as on SQLite.

Every test here gets a database of its own on the session's throwaway server
(tests/pg.py) through THUMBSEARCH_DATABASE_URL. The suites that hold on both databases
(add-ids, scheduling, doctor, the web API, `add`, `similar --ids-file`) run on each through
the ``backend`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from indexer.errors import StoreError, WriterBusyError
from indexer.ingest.queries import ingest_queries
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.db import alembic_config, make_engine
from indexer.store.schema import embeddings
from indexer.store.writer import writer_lock
from search.cli import app
from tests.fakes.corpus import seed_corpus
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeYouTube
from tests.vectors.test_store_index import schema_differences

pytestmark = pytest.mark.postgres

runner = CliRunner()


@pytest.fixture(autouse=True)
def _on_postgres(pg_env: str) -> str:
    return pg_env


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_tests_run_on_postgresql(pg_env: str) -> None:
    assert Settings.from_env().database_url == pg_env
    assert pg_env.startswith("postgresql+psycopg://")
    engine = make_engine(pg_env)
    try:
        assert engine.dialect.name == "postgresql"
    finally:
        engine.dispose()


def test_migrations_on_an_empty_database_match_the_table_definitions(pg_env: str) -> None:
    assert schema_differences(pg_env) == []


def test_alembic_upgrade_head_from_its_own_environment(pg_env: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    command.upgrade(alembic_config(), "head")  # the URL comes from THUMBSEARCH_DATABASE_URL
    engine = make_engine(pg_env)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"videos", "embeddings", "quota_ledger", "gone_videos", "alembic_version"} <= tables
        # The embedding id (the FAISS id) comes from a sequence, never reused after a delete.
        columns = {c["name"]: c for c in inspect(engine).get_columns("embeddings")}
        assert "nextval" in str(columns["id"].get("default") or "") or columns["id"].get(
            "identity")
    finally:
        engine.dispose()
    command.downgrade(alembic_config(), "base")
    engine = make_engine(pg_env)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


def test_ingest_end_to_end_with_the_fake_servers(youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    with build_service(Settings.from_env(), embedder=TinyEmbedder(),
                       sleep=lambda _s: None) as service:
        first = ingest_queries(service, ["cats", "space"])
        assert first.new == len(fake.searches["cats"]) + len(fake.searches["space"])
        assert first.failed == [] and first.known == 0
        fetched = sum(fake.thumbnail_requests.values())
        again = ingest_queries(service, ["nasa", "cats"])
        assert again.new == 0 and sum(fake.thumbnail_requests.values()) == fetched
        assert service.store.counts("tiny-test") == {
            "videos": first.new, "vectors": first.new, "queries": 3}
        with service.store.engine.connect() as conn:
            ids = [int(r[0]) for r in conn.execute(select(embeddings.c.id)
                                                    .order_by(embeddings.c.created_at,
                                                              embeddings.c.id))]
        assert ids == sorted(ids) and len(set(ids)) == first.new
        # Published times come back as aware UTC datetimes, as from SQLite.
        video = service.store.get_video(fake.searches["cats"][0])
        assert video is not None and video.fetched_at.utcoffset() is not None
        assert video.fetched_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        stored_id = fake.searches["cats"][0]
        vector = service.store.get_vector(stored_id, "tiny-test")
        assert vector is not None
        top = service.index().search(vector[1][None, :], 3)
        assert service.store.video_ids_for_rows([int(top[1][0][0])]) == {vector[0]: stored_id}
    # A new process catches up its index from the database (rows past the watermark).
    with build_service(Settings.from_env(), embedder=TinyEmbedder()) as reopened:
        assert reopened.index().size == first.new
    code, output = _cli("runs", "--json")
    assert code == 0, output
    runs = json.loads(output)
    assert [r["status"] for r in runs] == ["done", "done"]


def test_similar_stats_doctor_and_index_rebuild_through_the_cli(isolated_env: Path) -> None:
    with build_service(Settings.from_env()) as service:
        ids = seed_corpus(service, 40)
    code, output = _cli("stats", "--json")
    assert code == 0, output
    stats = json.loads(output)
    assert (stats["videos"], stats["vectors"], stats["index"]["size"]) == (40, 40, 40)
    code, output = _cli("similar", "-k", "3", "--json", "--", ids[0])
    assert code == 0, output
    results = json.loads(output)["results"]
    assert len(results) == 3 and ids[0] not in [r["video_id"] for r in results]
    code, output = _cli("doctor")
    assert code == 0 and output.startswith("ok: the database and the index agree\n"), output
    code, output = _cli("index", "rebuild")
    assert code == 0, output
    code, output = _cli("doctor", "--json")
    assert code == 0 and json.loads(output)["index_size"] == 40, output


def test_a_second_writer_on_another_host_is_refused_or_waits(pg_env: str,
                                                            tmp_path: Path) -> None:
    engine = make_engine(pg_env)
    try:
        # Two data directories (two hosts) share the database: only its lock stands between.
        with writer_lock(tmp_path / "host-a", "first", engine=engine):
            busy = (r"another ingest run \(pid \d+ on .+\) holds the lock \(a PostgreSQL "
                    r"advisory lock\) of the database postgresql\+psycopg://")
            with pytest.raises(WriterBusyError, match=busy), writer_lock(
                    tmp_path / "host-b", "second", engine=engine):
                pass
            ticks = iter(range(100))
            waited: list[float] = []
            with pytest.raises(WriterBusyError, match="after waiting 1s"), writer_lock(
                    tmp_path / "host-b", "second", wait=1.0, sleep=waited.append,
                    monotonic=lambda: next(ticks) * 0.3, engine=engine):
                pass
            assert waited
        with writer_lock(tmp_path / "host-b", "second", engine=engine):
            pass  # released at the end of the first run
    finally:
        engine.dispose()


@pytest.mark.kill
def test_a_killed_writers_lock_is_released_by_the_server(pg_env: str, tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from indexer.store.db import make_engine\n"
            "from indexer.store.writer import writer_lock\n"
            f"with writer_lock(Path({str(tmp_path / 'killed')!r}), 'crash',"
            f" engine=make_engine({pg_env!r})):\n"
            "    print('held', flush=True); time.sleep(600)\n")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            engine = make_engine(pg_env)
            try:
                with pytest.raises(WriterBusyError, match=rf"pid {child.pid} on "), \
                        writer_lock(tmp_path / "other", "second", engine=engine):
                    pass
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                started = time.monotonic()
                with writer_lock(tmp_path / "other", "second", wait=30.0, engine=engine):
                    assert time.monotonic() - started < 30
            finally:
                engine.dispose()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=30)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("args", [["stats"], ["similar", "--", "aaaaaaaaaaa"],
                                  ["doctor"], ["runs"]])
def test_an_unreachable_server_is_one_line_without_the_password(
        args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL",
                       f"postgresql+psycopg://thumb:s3cr3t-pw@127.0.0.1:{port}/corpus")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: cannot connect to the database at "
                               f"postgresql+psycopg://thumb:***@127.0.0.1:{port}/corpus: ")
    assert "s3cr3t" not in result.output and "Traceback" not in result.output


def test_an_unreachable_server_stops_a_writer_before_it_writes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://thumb:s3cr3t-pw@127.0.0.1:{port}/corpus"
    engine = make_engine(url)
    try:
        with pytest.raises(StoreError, match="cannot connect to the database") as caught, \
                writer_lock(tmp_path / "home", "test", engine=engine):
            pass
        assert "s3cr3t" not in str(caught.value)
    finally:
        engine.dispose()
    image = tmp_path / "one.png"
    from PIL import Image

    Image.fromarray(np.zeros((90, 160, 3), np.uint8)).save(image)
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", url)
    code, output = _cli("add", str(image))
    assert code == 1 and output.startswith("error: cannot connect to the database at "), output
    assert "s3cr3t" not in output


@pytest.mark.slow
def test_the_console_script_with_the_real_model(youtube_env: FakeYouTube) -> None:
    exe = Path(sys.executable).with_name("thumbsearch")

    def run(*args: str) -> str:
        done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "new videos 3" in run("ingest", "cats")
    stored = youtube_env.searches["cats"][0]
    results = json.loads(run("similar", "-k", "2", "--json", "--", stored))["results"]
    assert len(results) == 2 and stored not in [r["video_id"] for r in results]
    stats = json.loads(run("stats", "--json"))
    assert (stats["videos"], stats["vectors"], stats["index"]["size"]) == (3, 3, 3)
    assert run("doctor").startswith("ok: the database and the index agree\n")
    assert json.loads(run("runs", "--json"))[0]["status"] == "done"
