"""The lookup's added cost of each search option (``similar --rerank``): ms a query, rows
read by id and the peak memory a lookup allocates, at 10k and 100k stored vectors.

The corpus is synthetic clustered unit vectors of the default model's dimension, made as
in ``bench.index`` and stored in SQLite; the index is what ``index build`` chooses for the
size (flat at 10k: neighbours' vectors come from memory; IVF at 100k: from the database).
Each option answers the same stored videos through ``similar_to_video``, the options taking
turns on each video; the figures are medians and 99th percentiles of wall time, the median
of the time added over ``none`` on the same video, and tracemalloc's peak over 20 lookups.

Run: ``nice -n 10 .venv/bin/python -m bench.rerank [--sizes 10000 100000] [--lookups 200]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import tracemalloc
from typing import Any

import numpy as np

from bench.index import CLUSTER, DIM, MODEL, _metas, synthetic

OPTIONS = ("none", "aqe", "kr", "aqe+kr")


def _lookups(service: Any, videos: list[str], picks: np.ndarray) -> dict[str, Any]:
    """Every option on every pick, in a rotating order, so that load from elsewhere falls
    on all of them alike; the added cost is the median of (option - none) on the same pick."""
    from search.neighbours import similar_to_video
    from search.rerank import parse_rerank

    options = {spec: parse_rerank(spec) for spec in OPTIONS}
    for spec in OPTIONS:
        similar_to_video(service, videos[int(picks[0])], 10, options[spec])  # warm
    times: dict[str, list[float]] = {spec: [] for spec in OPTIONS}
    for number, pick in enumerate(picks):
        for spec in OPTIONS[number % len(OPTIONS):] + OPTIONS[:number % len(OPTIONS)]:
            started = time.perf_counter()
            similar_to_video(service, videos[int(pick)], 10, options[spec])
            times[spec].append(time.perf_counter() - started)
    out: dict[str, Any] = {}
    for spec in OPTIONS:
        tracemalloc.start()  # slows every allocation: a pass of its own, not timed
        for pick in picks[:20]:
            similar_to_video(service, videos[int(pick)], 10, options[spec])
            peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        ms = np.asarray(times[spec]) * 1000
        added = ms - np.asarray(times["none"]) * 1000
        out[spec] = {"p50_ms": round(float(np.percentile(ms, 50)), 3),
                     "p99_ms": round(float(np.percentile(ms, 99)), 3),
                     "added_p50_ms": round(float(np.percentile(added, 50)), 3),
                     "peak_kib": round(peak / 1024, 1)}
    return out


def measure(sizes: tuple[int, ...] = (10_000, 100_000), lookups: int = 200) -> dict[str, Any]:
    """Grow one corpus through ``sizes``; time every option at each."""
    from indexer.doctor import rebuild_index
    from indexer.service import build_service
    from indexer.settings import Settings

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(sizes) // CLUSTER, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out: dict[str, Any] = {"dim": DIM, "model": MODEL, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-rerank-") as tmp:
        settings = dataclasses.replace(Settings.from_env({"THUMBSEARCH_HOME": tmp}), model=MODEL)
        videos: list[str] = []
        with build_service(settings) as service:
            service.prepare_for_writing()
            for size in sizes:
                while len(videos) < size:
                    n = min(50_000, size - len(videos))
                    vectors = synthetic(n, len(videos), centres, upto=max(1, size // CLUSTER))
                    metas = _metas(len(videos), n)
                    service.store.add_embedded(metas, vectors, MODEL)
                    videos.extend(m.video_id for m in metas)
                report = rebuild_index(service, kind="auto")
                picks = rng.choice(len(videos), size=lookups, replace=False)
                figures: dict[str, Any] = {"type": report.type}
                with build_service(settings, lookups_only=True) as lookup:
                    figures.update(_lookups(lookup, videos, picks))
                out["sizes"][str(size)] = figures
    return out


def main() -> None:
    """Print the figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(measure(tuple(args.sizes), args.lookups), indent=1))


if __name__ == "__main__":
    main()
