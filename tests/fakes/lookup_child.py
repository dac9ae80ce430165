"""Concurrent `thumbsearch similar` lookups in a process of their own, for the soak test.

``python -m tests.fakes.lookup_child IDS_FILE --lookups N --threads T --refresh R
--seed S`` runs N lookups of ids drawn from IDS_FILE (one a line) in T threads, each
calling ``search.neighbours.similar_to_video`` on a Service of its own (TinyEmbedder, so
ids not stored yet are embedded from their thumbnail without TensorFlow), built again
every R lookups so it sees rows stored since. Settings come from the environment. It
prints one JSON line: lookups made and succeeded, the first errors, and its resident set
size (bytes) when half the lookups were made and at most after that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.service import build_service
from indexer.settings import Settings
from search.neighbours import similar_to_video
from tests.fakes.embedder import TinyEmbedder

__all__ = ["main", "rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int | str = "self") -> int:
    """Resident set size of a process in bytes (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


class _Lookups:
    def __init__(self, ids: list[str], total: int, refresh: int) -> None:
        self.ids = ids
        self.total = total
        self.refresh = refresh
        self.lock = threading.Lock()
        self.made = 0
        self.ok = 0
        self.errors: list[str] = []
        self.rss_half = 0
        self.rss_after_half = 0
        self.peak = 0  # the highest RSS sampled (every 20 lookups)
        self.trace: list[tuple[int, int]] = []  # (lookups made, RSS) every 500 lookups

    def run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        settings = Settings.from_env()
        service = build_service(settings, embedder=TinyEmbedder())
        mine = 0
        try:
            while True:
                with self.lock:
                    if self.made >= self.total:
                        return
                    self.made += 1
                    if self.made % 20 == 0:
                        self.peak = max(self.peak, rss())
                    if self.made % 500 == 0:
                        self.trace.append((self.made, rss()))
                    if self.made == self.total // 2:
                        self.rss_half = rss()
                    elif self.rss_half and self.made % 20 == 0:
                        self.rss_after_half = max(self.rss_after_half, rss())
                video = self.ids[int(rng.integers(len(self.ids)))]
                try:
                    good = len(similar_to_video(service, video, k=5).results) == 5
                except Exception as exc:  # reported: any error fails the soak
                    good = False
                    with self.lock:
                        self.errors.append(f"{video}: {type(exc).__name__}: {exc}")
                with self.lock:
                    self.ok += good
                mine += 1
                if mine % self.refresh == 0:
                    service.close()
                    service = build_service(settings, embedder=TinyEmbedder())
        finally:
            service.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lookups; print the JSON line; 0 when every lookup succeeded."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.lookup_child")
    parser.add_argument("ids_file", type=Path)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--refresh", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steady-file", type=Path,
                        help="afterwards, once this file exists (the corpus no longer "
                             "grows), run --steady-lookups more: a warm-up round, then a "
                             "measured one (peak RSS of each)")
    parser.add_argument("--steady-lookups", type=int, default=2000)
    args = parser.parse_args(argv)
    ids = args.ids_file.read_text().split()
    lookups = _run(ids, args.lookups, args.refresh, args.threads, args.seed)
    lookups.rss_after_half = max(lookups.rss_after_half, rss())
    report = {"lookups": lookups.made, "ok": lookups.ok, "errors": lookups.errors[:10],
              "error_count": len(lookups.errors), "rss_half": lookups.rss_half,
              "rss_after_half": lookups.rss_after_half, "trace": lookups.trace}
    rounds = [lookups]
    if args.steady_file is not None:
        deadline = time.monotonic() + 900.0
        while not args.steady_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        warm = _run(ids, args.steady_lookups, args.refresh, args.threads, args.seed + 100)
        steady = _run(ids, args.steady_lookups, args.refresh, args.threads, args.seed + 200)
        rounds += [warm, steady]
        report["steady"] = {"lookups": steady.made, "warm_peak": warm.peak,
                            "peak": steady.peak}
    report["ok_all"] = all(r.ok == r.made for r in rounds)
    report["error_count"] = sum(len(r.errors) for r in rounds)
    report["errors"] = [e for r in rounds for e in r.errors][:10]
    print(json.dumps(report))
    return 0 if report["ok_all"] else 1


def _run(ids: list[str], total: int, refresh: int, threads: int, seed: int) -> _Lookups:
    lookups = _Lookups(ids, total, refresh)
    workers = [threading.Thread(target=lookups.run, args=(seed + n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return lookups


if __name__ == "__main__":
    sys.exit(main())
