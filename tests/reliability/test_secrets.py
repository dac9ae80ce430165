"""Secrets in URLs stay out of every output: userinfo passwords and secret query parameters
of the database URL and the endpoints, and whatever a driver's error repeats of them."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.store.dberrors import safe_url
from search.cli import app

ROOT = Path(__file__).resolve().parents[2]
SECRET = "S3cret-Do-Not-Leak"
runner = CliRunner()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _database_urls(port: int) -> list[str]:
    base = f"postgresql+psycopg://thumb@127.0.0.1:{port}/corpus"
    return [
        f"{base}?password={SECRET}",
        f"postgresql+psycopg://thumb:{SECRET}@127.0.0.1:{port}/corpus",
        f"{base}?PassWord={SECRET}",
        f"{base}?sslpassword={SECRET}&password={SECRET}",
        f"{base}?pwd={SECRET}",
        f"{base}?passwd={SECRET}",
        f"{base}?api_key={SECRET}",
        f"{base}?access_token={SECRET}",
        f"{base}?secret={SECRET}",
        f"{base}?token={SECRET}",
        f"{base}?key={SECRET}",
        f"{base}?pass%77ord={SECRET}",  # a percent-encoded name is decoded before use
        f"{base}?connect_timeout=5&password={SECRET}&application_name=x",
        f"postgresql+psycopg://thumb:{SECRET}@127.0.0.1:notaport/corpus",
        f"postgresql+psycopg://thumb:{SECRET}@[::1/corpus?password={SECRET}",
    ]


def _leaks(text: str) -> bool:
    lowered = text.lower()
    # httplib2 lowercases what it repeats; a percent-encoded form is the same secret
    return SECRET.lower() in lowered or SECRET.replace("-", "%2D").lower() in lowered


@pytest.mark.parametrize("index", range(15))
def test_a_database_url_secret_is_masked_in_every_command(
        index: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # what a user turning on debug logging would see
    url = _database_urls(_closed_port())[index]
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", url)
    monkeypatch.setenv("YOUTUBE_API_KEY", "k")
    for args in (["stats"], ["runs"], ["runs", "--json"], ["doctor"], ["ingest", "cats"],
                 ["index", "rebuild"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
        assert not _leaks(result.output), (args, result.output)
    assert not _leaks(caplog.text), caplog.text


def test_the_connection_error_of_the_real_command_holds_no_password(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "THUMBSEARCH_HOME": str(tmp_path),
           "THUMBSEARCH_DATABASE_URL":
               f"postgresql+psycopg://thumb@127.0.0.1:{_closed_port()}/db?password={SECRET}"}
    done = subprocess.run([sys.executable, "-c", "from search.cli.app import main; main()",
                           "stats"], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot connect to the database" in done.stderr
    assert not _leaks(done.stderr + done.stdout), done.stderr


@pytest.mark.parametrize("url", [
    f"postgresql+psycopg://u@h/db?password={SECRET}",
    f"postgresql+psycopg://u:{SECRET}@h/db",
    f"postgresql+psycopg://u@h/db?sslmode=require&SSLPASSWORD={SECRET}",
    f"postgresql+psycopg://u@h/db?client_secret={SECRET}&x=1",
])
def test_safe_url_masks_userinfo_and_secret_parameters(url: str) -> None:
    shown = safe_url(url)
    assert not _leaks(shown), shown
    assert "h/db" in shown  # the rest stays readable


@pytest.mark.parametrize("endpoint", [
    f"ftp://u:{SECRET}@host/?key={SECRET}",
    f"http://u:{SECRET}@127.0.0.1:{{port}}/",
    f"http://127.0.0.1:{{port}}/?access_token={SECRET}",
    f"http://127.0.0.1:{{port}}/?key={SECRET}",
])
def test_an_endpoint_url_secret_is_masked(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEY", "k")
    monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", endpoint.format(port=_closed_port()))
    result = runner.invoke(app, ["ingest", "cats"])
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert not _leaks(result.output), result.output


def test_a_thumbnail_base_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", f"gopher://u:{SECRET}@x/?sig={SECRET}")
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 1
    assert not _leaks(result.output), result.output


def test_against_a_real_server_the_password_stays_out(pg_server: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pg import PgServer

    assert isinstance(pg_server, PgServer)
    # The test server trusts loopback: the password is accepted and ignored, so the
    # failure comes from the server itself (a database that does not exist).
    url = (f"postgresql+psycopg://{pg_server.user}:{SECRET}@127.0.0.1:{pg_server.port}"
           f"/no_such_db?password={SECRET}")
    monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", url)
    for args in (["stats"], ["runs"], ["doctor"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "no_such_db" in result.output
        assert not _leaks(result.output), result.output


def test_messages_that_merely_name_a_secret_stay_readable() -> None:
    result = runner.invoke(app, ["ingest", "cats"])  # no key set
    assert result.exit_code == 1
    assert "export YOUTUBE_API_KEY=..." in result.output, result.output
