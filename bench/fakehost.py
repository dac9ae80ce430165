"""The benchmark's fake YouTube (API and thumbnail host) in a child process of its own.

Serving from a separate process keeps the host's CPU out of the ingest process's
``process_time``: what the ingest process spends is then its own work only.
Run as ``python -m bench.fakehost --videos N``: it renders the catalogue, prints one JSON
line (endpoints, api key, the video ids) and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

__all__ = ["FakeHost", "main"]


@dataclass
class FakeHost:
    """A ``bench.fakehost`` child serving ``videos`` fake videos found by ``prefix``."""

    videos: int
    prefix: str = "bench"

    def __post_init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Self:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bench.fakehost", "--videos", str(self.videos),
             "--prefix", self.prefix],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            self._child.wait(timeout=10)
            raise RuntimeError(f"bench.fakehost exited with {self._child.returncode}")
        self.info = json.loads(line)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        assert child.stdin is not None
        child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    @property
    def ids(self) -> list[str]:
        """The catalogue's video ids, in search order."""
        return list(self.info["ids"])

    def env(self, home: str, model: str, runtime: str = "auto") -> dict[str, str]:
        """The environment pointing thumbsearch at this host, with its data under ``home``."""
        import os

        return {**os.environ, "THUMBSEARCH_HOME": home, "YOUTUBE_API_KEY": self.info["api_key"],
                "THUMBSEARCH_YOUTUBE_ENDPOINT": self.info["api_endpoint"],
                "THUMBSEARCH_THUMBNAIL_BASE": self.info["thumbnail_base"],
                "THUMBSEARCH_ALLOWED_HOSTS": self.info["thumbnail_host"],
                "THUMBSEARCH_MODEL": model, "THUMBSEARCH_RUNTIME": runtime}

    def thumbnail_url(self, video_id: str) -> str:
        """The mqdefault thumbnail URL of one video on this host."""
        return f"{self.info['thumbnail_base']}/{video_id}/mqdefault.jpg"


def main() -> None:
    """Serve the catalogue until stdin closes."""
    from bench.ingest import catalogue
    from tests.fakes.youtube import FakeYouTube

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, required=True)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args()
    fakes, searches = catalogue(args.videos, args.prefix)
    # Many searches per run: the quotas must never be what stops the benchmark. Connections
    # stay open, as i.ytimg.com keeps them.
    with FakeYouTube(fakes, searches, search_quota=10**9, units_quota=10**9,
                     keep_alive=True) as fake:
        print(json.dumps({"api_key": fake.api_key, "api_endpoint": fake.api_endpoint,
                          "thumbnail_base": fake.thumbnail_base,
                          "thumbnail_host": fake.thumbnail_host,
                          "ids": searches[args.prefix]}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
