"""A web app on a real uvicorn server on 127.0.0.1, in a thread, as `serve` runs it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from search.cli.serve import bind

__all__ = ["live_app"]


@contextmanager
def live_app(make_app: Callable[[int], Any]) -> Iterator[int]:
    """Serve ``make_app(port)`` on a free loopback port until the block ends; yield the port."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(port), log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
