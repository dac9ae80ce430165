"""Index figures against corpus size: lookup latency, recall, cost of adding, memory.

The corpus is built through the library API (the store, then the index) from synthetic
unit vectors of the default model's dimension (1280), because millions of thumbnails
cannot be embedded here. They are clustered, as thumbnails of recurring scenes are:
each vector is one of ``n / 50`` random centres plus isotropic noise of norm about 0.8
of the centre's, so exact neighbours are well defined and approximate search has
structure to exploit (uniform random vectors would have none; real ones have more).
Each stage of the growing corpus draws from the first ``size / 50`` centres, so every
vector has about 50 cluster mates or more at every size. The mates are nearly tied
(cosine about 0.6 to one another, spread by the noise alone), a harder case for
approximate search than real thumbnails, whose re-uploads stand out from look-alikes.

For each size (10k, 100k, 1M by default), in one run:
  - the index type ``auto`` picks, built from the database, with its tuned parameters;
  - lookup latency p50/p99 of ``similar_to_video`` for stored ids (the stored vector read
    from SQLite, the index searched, candidates re-scored, the final rows and titles read),
    in this process, through the reads ``thumbsearch similar`` uses (``sqlite3``, not
    SQLAlchemy), warm; then p50/p99 of as many more lookups "cold": the database file's
    pages dropped from the page cache first (fsync, ``POSIX_FADV_DONTNEED``; the share
    still resident, checked with ``mincore``, is reported beside);
  - recall@10 of those answers against exact search over every vector;
  - wall time of ``thumbsearch similar ID`` as a fresh process (median of 5 after a
    warm-up), with ``thumbsearch --help`` timed beside it;
  - time to add a batch of 1,000 (database rows, index, the save that follows a batch),
    the mean of 5 batches, compactions included when the tail outgrows its share;
    then the time of a compaction on its own;
  - bytes per vector of the snapshot, and peak RSS of a fresh process that opens the index
    and answers 200 lookups, for each index type at the middle size.

Run: ``.venv/bin/python -m bench.index [--sizes 10000 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexer.settings import DEFAULT_MODEL

MODEL = DEFAULT_MODEL  # the vectors are synthetic; the id is the product's default
DIM = 1280
BATCH = 1000
CLUSTER = 50  # vectors a cluster: a corpus of n vectors draws from its first n / 50 centres
NOISE = 0.8  # norm of a vector's noise against its centre's: cluster mates nearly tie
ADD_BATCHES = 5
LOOKUPS = 300
CLI_RUNS = 5  # fresh ``thumbsearch similar`` processes timed at each size
_CHILD = """
import json, sys
from pathlib import Path
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.vectors.index import VectorIndex
home, model, dim = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = Store(make_engine(f"sqlite:///{home / 'thumbsearch.sqlite3'}"))
index = VectorIndex.open(home / 'index', model, dim, store)
rows, vectors = store.vectors_for_rows(list(range(1, 201)))
index.search(vectors, 10)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mib": int(peak.split()[1]) / 1024, "type": index.build.type}))
"""


def synthetic(n: int, seed: int, centres: np.ndarray, upto: int | None = None) -> np.ndarray:
    """``n`` clustered unit vectors (float32 (n, DIM)) around the first ``upto`` centres."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, upto or len(centres), n)
    noise = rng.standard_normal((n, DIM), dtype=np.float32) * np.float32(NOISE / np.sqrt(DIM))
    out = centres[picks] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _metas(start: int, n: int) -> list[Any]:
    from indexer.records import VideoMeta
    from tests.fakes.corpus import video_id

    return [VideoMeta(video_id=video_id(i, "s"), source="bench", title=f"synthetic {i}",
                      thumbnail_url="https://i.ytimg.com/vi/x/mqdefault.jpg")
            for i in range(start, start + n)]


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 3)


def _peak_rss(home: Path) -> float:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(home), MODEL, str(DIM)],
                          check=True, capture_output=True, text=True, timeout=1800)
    return round(float(json.loads(done.stdout)["peak_rss_mib"]), 1)


def _lookups(service: Any, all_vectors: np.ndarray, all_ids: np.ndarray,
             all_videos: list[str], rng: np.random.Generator) -> dict[str, float]:
    from indexer.vectors.types import exact_positions
    from search.neighbours import similar_to_video

    picks = rng.choice(len(all_vectors), size=LOOKUPS, replace=False)
    times: list[float] = []
    hits = 0
    truth = exact_positions(all_vectors, all_vectors[picks], 11)
    for pick, expected in zip(picks, truth, strict=True):
        start = time.perf_counter()
        result = similar_to_video(service, all_videos[pick], 10)
        times.append(time.perf_counter() - start)
        wanted = [all_videos[e] for e in expected if e != pick][:10]
        hits += len({n.video_id for n in result.results} & set(wanted))
    return {"lookup_p50_ms": _percentile(times, 50), "lookup_p99_ms": _percentile(times, 99),
            "recall_at_10": round(hits / (10 * len(picks)), 4)}


def _cold_lookups(service: Any, database: Path, all_videos: list[str],
                  rng: np.random.Generator) -> dict[str, float]:
    """p50/p99 of lookups of other stored ids once the database's pages are dropped."""
    from bench.pagecache import drop, resident_share
    from search.neighbours import similar_to_video

    picks = rng.choice(len(all_videos), size=LOOKUPS, replace=False)
    before = resident_share(database)
    drop(database)
    after = resident_share(database)
    times: list[float] = []
    for pick in picks:
        start = time.perf_counter()
        similar_to_video(service, all_videos[pick], 10)
        times.append(time.perf_counter() - start)
    return {"lookup_cold_p50_ms": _percentile(times, 50),
            "lookup_cold_p99_ms": _percentile(times, 99),
            "database_resident_before_drop": round(before, 4),
            "database_resident_after_drop": round(after, 4),
            "database_resident_after_lookups": round(resident_share(database), 4)}


def _cli_times(home: Path, video_id: str) -> dict[str, float]:
    """Wall time of ``thumbsearch similar ID`` (a fresh process) and of ``--help``, same run."""
    from bench.cli import time_command

    exe = str(Path(sys.executable).with_name("thumbsearch"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THUMBSEARCH_", "YOUTUBE_"))}
    env.update(THUMBSEARCH_HOME=str(home), THUMBSEARCH_MODEL=MODEL)
    help_s = time_command([exe, "--help"], env, runs=CLI_RUNS)
    similar_s = time_command([exe, "similar", "--", video_id], env, runs=CLI_RUNS)
    return {"cli_help_s": round(help_s, 3), "cli_similar_s": round(similar_s, 3)}


def _per_type(service: Any) -> dict[str, Any]:
    from indexer.doctor import rebuild_index

    out: dict[str, Any] = {}
    for kind in ("flat", "ivf", "hnsw"):
        report = rebuild_index(service, kind=kind)
        service._index = None
        info = service.index().info()
        out[kind] = {"bytes_per_vector": info.bytes_per_vector,
                     "peak_rss_mib": _peak_rss(service.settings.home),
                     "recall_at_10_at_build": report.recall_at_10,
                     "params": report.params, "build_s": round(report.seconds, 2)}
    rebuild_index(service, kind="auto")
    service._index = None
    return {"at_vectors": service.index().size, **out}


def measure(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
            quick: bool = False, *,
            then: Callable[[Path, list[str]], None] | None = None) -> dict[str, Any]:
    """Build the corpus up through ``sizes`` and return the figures (see module docstring).

    ``then(home, video_ids)`` runs on the largest corpus before it is deleted (``make bench``
    loads ``serve`` on it rather than building a second one)."""
    import dataclasses

    from indexer.doctor import rebuild_index
    from indexer.service import build_service
    from indexer.settings import Settings

    if quick:
        sizes = (2_000, 10_000)
    per_type_at = sizes[min(1, len(sizes) - 1)]
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(sizes) // CLUSTER, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out: dict[str, Any] = {"dim": DIM, "vectors": "synthetic, clustered", "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-index-") as tmp:
        home = Path(tmp)
        settings = dataclasses.replace(Settings.from_env({"THUMBSEARCH_HOME": str(home)}),
                                       model=MODEL)
        with build_service(settings) as service:
            service.prepare_for_writing()
            chunks: list[np.ndarray] = []
            id_chunks: list[np.ndarray] = []
            videos: list[str] = []
            made = 0
            for size in sizes:
                while sum(len(c) for c in chunks) < size:
                    n = min(50_000, size - sum(len(c) for c in chunks))
                    vectors = synthetic(n, made, centres, upto=max(1, size // CLUSTER))
                    metas = _metas(made, n)
                    id_chunks.append(service.store.add_embedded(metas, vectors, MODEL))
                    chunks.append(vectors)
                    videos.extend(m.video_id for m in metas)
                    made += n
                all_vectors, all_ids = np.concatenate(chunks), np.concatenate(id_chunks)
                chunks, id_chunks = [all_vectors], [all_ids]
                started = time.perf_counter()
                report = rebuild_index(service, kind="auto")
                build_s = time.perf_counter() - started
                service._index = None  # lookups open it from disk, as the CLI does
                index = service.index()
                figures: dict[str, Any] = {
                    "vectors": index.size, "type": report.type, "factory": report.factory,
                    "params": report.params, "recall_at_10_at_build": report.recall_at_10,
                    "build_s": round(build_s, 2), "bytes_per_vector": index.info().bytes_per_vector,
                    "codes_bytes": index.info().codes_bytes, "mmap": index.info().mmap}
                with build_service(settings, lookups_only=True) as lookups:  # as `similar` reads
                    figures.update(_lookups(lookups, all_vectors, all_ids, videos, rng))
                    figures.update(_cold_lookups(lookups, home / "thumbsearch.sqlite3", videos,
                                                 rng))
                figures.update(_cli_times(home, videos[int(rng.integers(len(videos)))]))
                # Batches of 1,000 the way an ingest run adds them: rows, index, the save after
                # (an append to the tail, or a compaction when the tail has outgrown its share).
                times = []
                for _ in range(ADD_BATCHES):
                    batch = synthetic(BATCH, made, centres, upto=max(1, size // CLUSTER))
                    metas = _metas(made, BATCH)
                    made += BATCH
                    started = time.perf_counter()
                    rows = service.store.add_embedded(metas, batch, MODEL)
                    index.add(rows, batch)
                    index.save()
                    times.append(time.perf_counter() - started)
                    chunks.append(batch)
                    id_chunks.append(rows)
                    videos.extend(m.video_id for m in metas)
                figures["add_1000_s"] = round(float(np.mean(times)), 4)
                figures["add_1000_each_s"] = [round(t, 4) for t in times]
                figures["tail_after_adds"] = index.tail_size
                started = time.perf_counter()
                index.compact()
                figures["compaction_s"] = round(time.perf_counter() - started, 2)
                figures["peak_rss_mib"] = _peak_rss(home)
                out["sizes"][str(size)] = figures
                print(json.dumps({str(size): figures}), file=sys.stderr, flush=True)
                if size == per_type_at:
                    out["per_type"] = _per_type(service)
                    print(json.dumps({"per_type": out["per_type"]}), file=sys.stderr, flush=True)
        if then is not None:
            then(home, videos)
    return out


def main() -> None:
    """Run the benchmark and print its figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="2k and 10k vectors only")
    args = parser.parse_args()
    print(json.dumps(measure(tuple(args.sizes), quick=args.quick), indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
