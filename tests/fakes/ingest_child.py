"""`thumbsearch ingest` with the tiny test embedder, as a process of its own.

``python -m tests.fakes.ingest_child QUERY [QUERY ...] [--pages N] [--per-page N]
[--batch-size N] [--embed-seconds S] [--phase-dir DIR]`` reads its settings from the
environment as the CLI does, builds the service with TinyEmbedder instead of the real
model (which takes seconds to load in every process) and calls the library function
`thumbsearch ingest QUERY` calls, ``indexer.ingest.queries.ingest_queries``. It prints the JSON
summary and exits as the CLI does: 0 done, 1 an error (one line on stderr), 3 quota.

``--embed-seconds`` makes each batch take that long, as the real model does;
``--phase-dir`` makes the embedder hold a file ``embedding`` in DIR while it embeds, so
a test can see from outside that the process is embedding.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.errors import ThumbsearchError
from indexer.ingest.queries import ingest_queries
from indexer.service import Service, build_service
from indexer.settings import Settings
from tests.fakes.embedder import TinyEmbedder

__all__ = ["EMBEDDING_MARKER", "SlowTinyEmbedder", "add_embedder_options", "main",
           "slow_service"]

EMBEDDING_MARKER = "embedding"


class SlowTinyEmbedder(TinyEmbedder):
    """TinyEmbedder that takes ``seconds`` a batch and shows a marker file while it works."""

    def __init__(self, seconds: float = 0.0, phase_dir: Path | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.marker = phase_dir / EMBEDDING_MARKER if phase_dir is not None else None

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Embed as TinyEmbedder does, inside the marker's lifetime."""
        if self.marker is not None:
            self.marker.touch()
        try:
            if self.seconds:
                time.sleep(self.seconds)
            return super().embed(batch)
        finally:
            if self.marker is not None:
                self.marker.unlink(missing_ok=True)


def add_embedder_options(parser: argparse.ArgumentParser) -> None:
    """``--batch-size``, ``--embed-seconds`` and ``--phase-dir`` (see ``slow_service``)."""
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--embed-seconds", type=float, default=0.0)
    parser.add_argument("--phase-dir", type=Path, default=None)


def slow_service(args: argparse.Namespace) -> Service:
    """The service from the environment, with SlowTinyEmbedder as the options say."""
    settings = Settings.from_env()
    if args.batch_size:
        settings = dataclasses.replace(settings, batch_size=args.batch_size)
    return build_service(settings, embedder=SlowTinyEmbedder(args.embed_seconds,
                                                             args.phase_dir))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ingest; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.ingest_child")
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--pages", type=int, default=1)
    parser.add_argument("--per-page", type=int, default=50)
    add_embedder_options(parser)
    args = parser.parse_args(argv)
    try:
        with slow_service(args) as service:
            summary = ingest_queries(service, args.queries, pages=args.pages,
                                     per_page=args.per_page)
    except ThumbsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary.to_json()))
    return 3 if summary.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
