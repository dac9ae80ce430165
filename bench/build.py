"""Index build cost against corpus size: wall and CPU seconds, peak RSS, bytes a vector.

The corpus is synthetic clustered unit vectors of the default model's dimension, made
as in ``bench.index`` (each stage draws from its first ``size / 50`` centres) and
stored in a SQLite database (5.2 KB a row: 1M rows are about 5.5 GB on disk). For each
size (100k and 1M by default) and each index type (ivf, hnsw, flat), the real command
``thumbsearch index build --type TYPE --json`` runs as a process of its own; this
process (standard library only, so it stays small) times it and reads from
``wait4`` its CPU seconds (user + system) and peak RSS. Printed for each build:

  - ``wall_s``, ``cpu_s``, ``peak_rss_mib`` of the command, and the peak RSS over the
    snapshot's size (what a rebuild holds beyond the index itself);
  - ``bytes_per_vector`` of the snapshot written, the tuned parameters and recall@10;
  - the build's own phases (``phases``): drawing the sample (a pass over the row ids,
    then the sampled rows), training on it, reading the corpus batch by batch, adding
    it, ranking the tuning queries exactly over it (in the same pass) and tuning;
  - per-vector costs (microseconds a vector of reading, adding, exact ranking) and the
    training cost over sample x lists (nanoseconds), the figures to extrapolate from:
    training works on ``50 * nlist`` vectors with ``nlist ~ 2 sqrt(n)`` lists, so it grows
    like n; adding assigns each vector to the nearest of nlist centroids, so its cost a
    vector grows like sqrt(n); reading and exact ranking of the 500 tuning queries cost
    the same a vector at any size; tuning depends on the lists probed, not on n.

Run: ``nice -n 10 .venv/bin/python -m bench.build [--sizes 100000 1000000]
[--types ivf hnsw flat] [--dir DIR]``. The corpus is made once and grown from one size
to the next; ``--dir`` keeps it (default: a temporary directory, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["fill", "measure"]

MODEL = "efficientnet-lite0+unbar"
DIM = 1280
CLUSTER = 50  # as bench.index: a corpus of n vectors draws from its first n / 50 centres
FILL_CHUNK = 20_000
TIMEOUT_S = 3 * 3600


def fill(database: Path, start: int, stop: int, size: int) -> None:
    """Store synthetic vectors ``start`` to ``stop`` (of a corpus of ``size``) in ``database``."""
    from datetime import UTC, datetime

    import numpy as np
    from sqlalchemy import insert

    from bench.index import synthetic
    from indexer.store.db import make_engine
    from indexer.store.metadata import Store
    from indexer.store.schema import embeddings, videos
    from tests.fakes.corpus import video_id

    store = Store(make_engine(f"sqlite:///{database}"))
    store.upgrade()
    centres = np.random.default_rng(0).standard_normal(
        (max(1, size // CLUSTER), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    now = datetime.now(UTC)
    for first in range(start, stop, FILL_CHUNK):
        n = min(FILL_CHUNK, stop - first)
        vectors = synthetic(n, first, centres)
        names = [video_id(i, "s") for i in range(first, first + n)]
        video_rows = [{"video_id": v, "source": "bench", "title": f"synthetic {v}",
                       "thumbnail_url": "", "fetched_at": now, "created_at": now}
                      for v in names]
        vector_rows = [{"video_id": v, "model": MODEL, "dim": DIM, "created_at": now,
                        "vector": np.ascontiguousarray(x, dtype="<f4").tobytes()}
                       for v, x in zip(names, vectors, strict=True)]

        def write(conn: Any, video_rows: Any = video_rows, vector_rows: Any = vector_rows) -> None:
            conn.execute(insert(videos), video_rows)
            conn.execute(insert(embeddings), vector_rows)

        store.transact("filling the bench corpus", write)


def _run_build(home: Path, kind: str) -> dict[str, Any]:
    """``thumbsearch index build --type KIND --json`` in a process of its own, measured."""
    command = [str(Path(sys.executable).with_name("thumbsearch")), "index", "build",
               "--type", kind, "--json"]
    env = {**os.environ, "THUMBSEARCH_HOME": str(home), "THUMBSEARCH_MODEL": MODEL}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {err.read().decode()[-2000:]}")
        report: dict[str, Any] = json.loads(out.read())
    snapshot = home / "index" / f"{MODEL}.faiss"
    size = int(report["vectors"])
    snapshot_bytes = snapshot.stat().st_size
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    figures: dict[str, Any] = {
        "vectors": size, "factory": report["factory"], "params": report["params"],
        "recall_at_10": report["recall_at_10"], "sample_size": report.get("sample_size", 0),
        "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(peak, 1), "snapshot_mib": round(snapshot_bytes / 2**20, 1),
        "rss_beyond_snapshot_mib": round(peak - snapshot_bytes / 2**20, 1),
        "bytes_per_vector": round(snapshot_bytes / max(1, size), 1),
        "phases": report.get("phases", {})}
    phases = figures["phases"]
    figures["us_per_vector"] = {name.removesuffix("_s"): round(1e6 * phases[name] / size, 2)
                                for name in ("read_s", "add_s", "exact_s") if name in phases}
    lists = re.search(r"IVF(\d+)", report["factory"])
    if lists and "train_s" in phases and figures["sample_size"]:
        figures["nlist"] = int(lists.group(1))
        figures["train_ns_per_sample_x_list"] = round(
            1e9 * phases["train_s"] / (figures["sample_size"] * figures["nlist"]), 3)
    return figures


def _fill_process(database: Path, start: int, stop: int, size: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.build", "--fill", str(database), str(start),
                    str(stop), str(size)], check=True, timeout=TIMEOUT_S)
    return round(time.perf_counter() - started, 1)


def measure(sizes: tuple[int, ...] = (100_000, 1_000_000),
            kinds: tuple[str, ...] = ("ivf", "hnsw", "flat"),
            directory: Path | None = None, quick: bool = False) -> dict[str, Any]:
    """Grow the stored corpus through ``sizes``, build each type at each, return the figures."""
    if quick:
        sizes = (20_000,)
    out: dict[str, Any] = {"dim": DIM, "vectors": "synthetic, clustered, in SQLite",
                           "cpus": os.cpu_count(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-build-",
                                     dir=directory) as tmp:
        home = Path(tmp)
        database = home / "thumbsearch.sqlite3"
        stored = 0
        for size in sizes:
            fill_s = _fill_process(database, stored, size, size)
            stored = size
            figures: dict[str, Any] = {"fill_s": fill_s,
                                       "database_mib": round(database.stat().st_size / 2**20)}
            for kind in kinds:
                figures[kind] = _run_build(home, kind)
                print(json.dumps({str(size): {kind: figures[kind]}}), file=sys.stderr,
                      flush=True)
            out["sizes"][str(size)] = figures
    return out


def main() -> None:
    """Run the benchmark and print its figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--types", nargs="+", default=["ivf", "hnsw", "flat"],
                        choices=["ivf", "hnsw", "flat"])
    parser.add_argument("--dir", type=Path, help="where to make the corpus (default: /tmp)")
    parser.add_argument("--quick", action="store_true", help="20k vectors only")
    parser.add_argument("--fill", nargs=4, metavar=("DB", "START", "STOP", "SIZE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(Path(args.fill[0]), int(args.fill[1]), int(args.fill[2]), int(args.fill[3]))
        return
    print(json.dumps(measure(tuple(args.sizes), tuple(args.types), args.dir, args.quick),
                     indent=1))


if __name__ == "__main__":
    main()
