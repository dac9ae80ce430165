"""One ingest worker as a process of its own: `add-ids` or `ingest --queries-file`.

``python -m tests.fakes.worker_child (--ids FILE | --queries-file FILE) [--no-details]
[--batch-size N] [--embed-seconds S] [--phase-dir DIR] [--go FILE]`` reads its settings
from the environment as the CLI does, builds the service with TinyEmbedder (slowed by
``--embed-seconds`` a batch, holding ``DIR/embedding`` while it embeds) instead of the
real model, and calls the library function the command calls
(``indexer.ingest.idlist.add_video_ids`` or ``indexer.ingest.queries.run_queries``). With
``--go`` it first waits until FILE exists, so that several children start their work
together. It prints the JSON summary and exits as the CLI does: 0 done, 1 an error
(one line on stderr), 3 quota.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from indexer.errors import ThumbsearchError
from indexer.ingest.idlist import add_video_ids
from indexer.ingest.queries import run_queries
from indexer.youtube.queryfile import load_queries_file
from tests.fakes.ingest_child import add_embedder_options, slow_service

__all__ = ["main"]

GO_TIMEOUT = 120.0  # seconds to wait for the go file before giving up


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + GO_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {path} did not appear")
        time.sleep(0.02)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.worker_child")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--ids", type=Path)
    what.add_argument("--queries-file", type=Path)
    parser.add_argument("--no-details", action="store_true")
    parser.add_argument("--go", type=Path, default=None)
    add_embedder_options(parser)
    args = parser.parse_args(argv)
    try:
        with slow_service(args) as service:
            service.prepare_for_writing()
            if args.go is not None:
                _wait_for(args.go)
            if args.ids is not None:
                ids = [line.strip() for line in args.ids.read_text().splitlines()
                       if line.strip()]
                result = add_video_ids(service, ids, details=not args.no_details)
                print(json.dumps({**result.to_json(), "stopped": result.stopped}))
                return 3 if result.stopped else 0
            summary = run_queries(service, load_queries_file(args.queries_file))
    except ThumbsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps({**summary.to_json(), "stopped": summary.stopped}))
    return 3 if summary.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
