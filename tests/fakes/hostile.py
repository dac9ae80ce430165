"""A misbehaving image host on 127.0.0.1: raw sockets, so it can break HTTP on purpose.

Each request's path is answered by a ``Behaviour``: a normal body, a redirect, an
error status, a connection reset, a truncated body (Content-Length larger than
what is sent), a slow drip, a stall (``stalls`` says whether the client hung up
before each one ended), or an endless body. With ``fault_rate`` set,
requests that would be answered normally are instead answered by a random fault
(5xx, timeout, reset, slow body, truncation) with that probability, from a seeded
generator, so a test can run an ingest through a storm of faults.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = ["FAULT_KINDS", "Behaviour", "HostileServer"]

FAULT_KINDS = ("500", "503", "timeout", "reset", "slow", "truncate")


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request."""

    kind: str  # ok, redirect, status, reset, truncate, drip, stall, endless
    body: bytes = b""
    content_type: str = "image/jpeg"
    status: int = 200
    location: str = ""
    interval: float = 0.0  # drip: seconds between chunks
    chunk: int = 1  # drip: bytes per chunk
    content_length: str = ""  # ok, status: sent as Content-Length instead of the body's length
    headers: tuple[tuple[str, str], ...] = ()  # more header lines, sent as they are


Router = Callable[[str], Behaviour]


class HostileServer:
    """Serves ``router(path)`` answers on an ephemeral loopback port from daemon threads."""

    def __init__(self, router: Router, *, fault_rate: float = 0.0, seed: int = 0,
                 stall: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> None:
        """``stall`` caps how long a stall waits for the client to hang up; ``sleep``
        paces a drip (injectable, so that a slow body need not take real time)."""
        self.router = router
        self.fault_rate = fault_rate
        self.stall = stall
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self.faults: Counter[str] = Counter()
        # One entry per stall once it is over: True when the client hung up before its end.
        self.stalls: list[bool] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    @property
    def host(self) -> str:
        """host:port, as THUMBSEARCH_ALLOWED_HOSTS takes it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return f"http://{self.host}{path}"

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stopping.set()
        if self._sock is not None:
            # Wakes the accept loop now (Linux) instead of at its next timeout.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _pick_fault(self) -> str | None:
        with self._lock:
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(FAULT_KINDS)
        return None

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    more = conn.recv(4096)
                    if not more:
                        return
                    data += more
                path = data.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                with self._lock:
                    self.requests.append(path)
                behaviour = self.router(path)
                if behaviour.kind == "ok":
                    fault = self._pick_fault()
                    if fault is not None:
                        with self._lock:
                            self.faults[fault] += 1
                        behaviour = _fault(fault, behaviour.body)
                self._answer(conn, behaviour)
            except OSError:
                return  # the client gave up: nothing to answer to

    def _answer(self, conn: socket.socket, b: Behaviour) -> None:
        def head(status: int, length: int | None, extra: str = "") -> bytes:
            lines = f"HTTP/1.1 {status} X\r\nContent-Type: {b.content_type}\r\n"
            if b.content_length and b.kind in ("ok", "status"):
                lines += f"Content-Length: {b.content_length}\r\n"
            elif length is not None:
                lines += f"Content-Length: {length}\r\n"
            lines += "".join(f"{name}: {value}\r\n" for name, value in b.headers)
            return (lines + extra + "Connection: close\r\n\r\n").encode()

        if b.kind == "ok" or b.kind == "status":
            conn.sendall(head(b.status, len(b.body)) + b.body)
        elif b.kind == "redirect":
            conn.sendall(head(b.status or 302, 0, f"Location: {b.location}\r\n"))
        elif b.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif b.kind == "truncate":
            conn.sendall(head(200, len(b.body)) + b.body[: len(b.body) // 2])
        elif b.kind == "drip":
            conn.sendall(head(200, len(b.body)))
            for start in range(0, len(b.body), b.chunk):
                if self._stopping.is_set():
                    return
                conn.sendall(b.body[start:start + b.chunk])
                self.sleep(b.interval)
        elif b.kind == "stall":
            hung_up = _wait_for_hang_up(conn, self.stall)
            with self._lock:
                self.stalls.append(hung_up)
        elif b.kind == "endless":
            conn.sendall(head(200, None))
            block = b"\0" * 65536
            while not self._stopping.is_set():
                conn.sendall(block)
        else:
            raise ValueError(f"unknown behaviour {b.kind!r}")


def _wait_for_hang_up(conn: socket.socket, seconds: float) -> bool:
    """Say nothing for ``seconds``; True when the client closed the connection before that."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        conn.settimeout(left)
        try:
            if not conn.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True  # reset by the client
    return False


def _fault(kind: str, body: bytes) -> Behaviour:
    if kind in ("500", "503"):
        return Behaviour("status", b"<html>busy</html>", "text/html", status=int(kind))
    if kind == "timeout":
        return Behaviour("stall")
    if kind == "reset":
        return Behaviour("reset")
    if kind == "slow":  # a slow but complete body: about 0.3 s
        return Behaviour("drip", body, interval=0.3 / max(1, len(body) // 4096 + 1),
                         chunk=4096)
    return Behaviour("truncate", body)
