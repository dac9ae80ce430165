"""A throwaway PostgreSQL server on 127.0.0.1 for the test session, one database per test.

Loaded as a plugin by tests/conftest.py. The server is Debian's PostgreSQL
(``/usr/lib/postgresql/*/bin``), initialised in a temporary directory (as the
``postgres`` system user when the tests run as root: the server refuses root),
with its unix socket in that directory too, and stopped at the end of the
session. Each test that asks for ``pg_url`` gets a database of its own, created
from ``template0`` and dropped afterwards. Without PostgreSQL those tests skip,
except in CI (``CI=true``), where they fail so that a missing install is noticed.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "BINDIR_ENV",
    "PgServer",
    "pg_binaries",
    "pg_env",
    "pg_server",
    "pg_url",
    "pytest_collection_modifyitems",
    "start_server",
    "stop_server",
]


BINDIR_ENV = "THUMBSEARCH_TEST_PG_BINDIR"  # a bin directory to use instead of looking


def pg_binaries() -> Path | None:
    """The bin directory of the newest PostgreSQL installed, or None."""
    given = os.environ.get(BINDIR_ENV)
    if given is not None:
        return Path(given) if (Path(given) / "initdb").is_file() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".")
                                  if x.isdigit()])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A running server: its port and the superuser to connect as (trust auth, loopback)."""

    bindir: Path
    datadir: Path
    port: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (psycopg driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement on the ``postgres`` database, outside a transaction."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(argv)]


def start_server(bindir: Path) -> tuple[PgServer, Path]:
    """Initialise and start a server in a new temporary directory; (server, that directory)."""
    root = Path(tempfile.mkdtemp(prefix="thumbsearch-pg-"))
    datadir, sockdir = root / "data", root / "socket"
    sockdir.mkdir()
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("postgres")
        for path in (root, sockdir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(datadir), "-U",
                                    "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                                    "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    options = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options,
                                    "-l", str(root / "server.log"), "-w", "-t", "60",
                                    "start"]),
                   check=True, capture_output=True, timeout=120)
    return PgServer(bindir, datadir, port), root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that asks for the server, so that ``-m "not postgres"``
    leaves out all of them."""
    for item in items:
        if {"pg_server", "pg_url", "pg_env"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (skip without PostgreSQL; fail instead in CI)."""
    bindir = pg_binaries()
    if bindir is None:
        message = ("PostgreSQL is not installed (apt-get install postgresql): "
                   "no /usr/lib/postgresql/*/bin/initdb")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    server, root = start_server(bindir)
    try:
        yield server
    finally:
        stop_server(server, root)


def stop_server(server: PgServer, root: Path) -> None:
    """Stop a server ``start_server`` started and delete its directory."""
    subprocess.run(_as_server_user([str(server.bindir / "pg_ctl"), "-D", str(server.datadir),
                                    "-m", "immediate", "-w", "stop"]),
                   capture_output=True, timeout=60, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new empty database, dropped (with its sessions) after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_server.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield pg_server.url(name)
    finally:
        gc.collect()  # a connection the test left open is reported against the test itself
        with contextlib.suppress(Exception):
            pg_server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_env(isolated_env: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``isolated_env`` with THUMBSEARCH_DATABASE_URL naming a database of its own."""
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", pg_url)
    yield pg_url
