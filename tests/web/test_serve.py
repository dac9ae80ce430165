"""`thumbsearch serve` as a process: binding, Host headers and oversized uploads on the wire."""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "thumbsearch"
LIMIT = 64 * 1024  # THUMBSEARCH_MAX_IMAGE_BYTES for these servers


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THUMBSEARCH_")}
    env["THUMBSEARCH_HOME"] = str(home)
    env["THUMBSEARCH_MAX_IMAGE_BYTES"] = str(LIMIT)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_fails(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "serve", *args], env=_env(home), capture_output=True,
                          text=True, timeout=120)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "serving" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_port_in_use_exits_1_before_claiming_to_serve(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_error_line(_serve_fails(tmp_path / "home", "--port", str(port)))
    assert f"127.0.0.1:{port}" in line and "in use" in line


@pytest.mark.parametrize("host", ["256.0.0.1", "no-such-host.invalid", "192.0.2.1"])
def test_an_address_that_cannot_be_bound_exits_1(tmp_path: Path, host: str) -> None:
    line = _one_error_line(_serve_fails(tmp_path / "home", "--host", host, "--allow-remote",
                                        "--port", str(_free_port())))
    assert host in line


def test_a_privileged_port_exits_1(tmp_path: Path) -> None:
    drop: list[str] = []
    if os.geteuid() == 0:  # root binds port 80: run it without that capability
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop "
                        "CAP_NET_BIND_SERVICE")
        drop = [setpriv, "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"]
    done = subprocess.run([*drop, str(BIN), "serve", "--port", "80"],
                          env=_env(tmp_path / "home"), capture_output=True, text=True,
                          timeout=120)
    line = _one_error_line(done)
    assert "127.0.0.1:80" in line and "permission denied" in line


@contextmanager
def _server(home: Path, *args: str) -> Iterator[int]:
    """`thumbsearch serve` on a free loopback port; yields the port once it answers."""
    port = _free_port()
    log = home.parent / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as errors:
        server = subprocess.Popen([str(BIN), "serve", "--port", str(port), *args],
                                  env=_env(home), stdout=subprocess.DEVNULL, stderr=errors)
    try:
        for _ in range(600):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(port: int, path: str, host: str) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_only_loopback_host_headers_are_answered(tmp_path: Path) -> None:
    with _server(tmp_path / "home") as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            status, body = _get(port, "/api/stats", host)
            assert status == 200 and "videos" in body
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
            status, body = _get(port, "/api/stats", host)
            assert (status, list(body)) == (400, ["error"]), (host, body)


def test_allow_remote_answers_any_host(tmp_path: Path) -> None:
    with _server(tmp_path / "home", "--allow-remote") as port:
        status, body = _get(port, "/api/stats", f"evil.example:{port}")
        assert status == 200 and "videos" in body


def _answer_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the answer on ``sock`` (the body may come in a later segment
    than the head: read up to its Content-Length, or to the close without one)."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _length(data: bytes) -> float:
    """The Content-Length the head in ``data`` declares (unbounded without one)."""
    head = data.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return float("inf")


def test_oversized_uploads_are_413_without_reading_them(tmp_path: Path) -> None:
    with _server(tmp_path / "home") as port:
        # A declared length over the limit: refused before a byte of the body is read.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /api/similar HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 10000000000\r\n\r\n")
            status, body = _answer_of(sock)
            assert status == 413 and b'"error"' in body
        # No declared length (chunked): refused while streaming, long before the sender ends.
        budget = 256 * 1024 * 1024
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /api/similar HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            part = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; "
                    b"filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            block = b"\xff" * 65536
            chunk = b"%x\r\n%s\r\n" % (len(block), block)
            sock.settimeout(5)
            while sent < budget:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                try:
                    sock.sendall(chunk)
                except OSError:  # the server stopped reading (timeout) or closed
                    break
                sent += len(chunk)
            status, body = _answer_of(sock)
        assert status == 413 and b'"error"' in body
        assert sent < budget / 4, sent


def test_answers_on_the_bound_socket_are_not_held_back_by_nagle() -> None:
    """asyncio sets TCP_NODELAY on the connections of a socket that names TCP as its protocol;
    without it each keep-alive answer (headers, then body) waits about 40 ms for an ACK."""
    import asyncio

    from search.cli.serve import bind

    async def accepted_nodelay() -> int:
        seen: list[int] = []

        async def handler(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listening = bind("127.0.0.1", 0)
        server = await asyncio.start_server(handler, sock=listening)
        async with server:
            reader, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            await reader.read()
            writer.close()
        return seen[0]

    assert asyncio.run(accepted_nodelay()) == 1
