"""What the watchlist check adds to a run: ms per stored batch of 32 with 0 to 10,000
watched items.

Each batch is checked as a run checks it (``indexer.ingest.watch.WatchCheck`` on a real
SQLite file: the watchlist's change query, the product with the watched vectors, the
threshold test); the vectors are synthetic unit vectors of the default model's dimension,
scoring below the threshold so that nothing is recorded. The figure is the median over
the batches. The check never reads the corpus, so the corpus size does not enter.

Run: ``nice -n 10 .venv/bin/python -m bench.watch [--items 0 10 1000 10000] [--batches 200]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.index import DIM

BATCH = 32


def _units(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def measure(items: list[int], batches: int) -> dict[str, Any]:
    """Median ms per checked batch for each watchlist size in ``items``."""
    from indexer.ingest.watch import WatchCheck
    from indexer.store.db import make_engine
    from indexer.store.metadata import Store
    from indexer.store.watchlist import add_watch_item

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"batch": BATCH, "dim": DIM, "ms_per_batch": {}}
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'watch.sqlite3'}")
        try:
            store = Store(engine)
            store.upgrade()
            watched = 0
            for size in sorted(items):
                for vector in _units(rng, size - watched):
                    add_watch_item(store, name=f"item-{watched}", kind="image", source="x",
                                   video_id=None, model="bench", vector=vector, threshold=0.99)
                    watched += 1
                check = WatchCheck(store, "bench", run_id=None)
                check.check(["warm"], _units(rng, 1))  # reads the watchlist
                new = [_units(rng, BATCH) for _ in range(batches)]
                times = []
                for n, vectors in enumerate(new):
                    started = time.perf_counter()
                    check.check([f"v{n}-{i}" for i in range(BATCH)], vectors)
                    times.append(time.perf_counter() - started)
                assert check.found == 0
                out["ms_per_batch"][str(size)] = round(statistics.median(times) * 1e3, 3)
        finally:
            engine.dispose()
    return out


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[0, 10, 1000, 10_000])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(measure(args.items, args.batches), indent=2))


if __name__ == "__main__":
    main()
