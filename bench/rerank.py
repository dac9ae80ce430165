"""The lookup's added cost of each search option (``similar --rerank``): ms a query, rows
read by id and the peak memory a lookup allocates, at 10k and 100k stored vectors.

The corpus is synthetic clustered unit vectors of the default model's dimension, made as
in ``bench.index`` and stored in SQLite; the index is what ``index build`` chooses for the
size (flat at 10k: neighbours' vectors come from memory; IVF at 100k: from the database).
Each option answers the same stored videos through ``similar_to_video``; the figures are
medians and 99th percentiles of wall time and tracemalloc's peak a lookup, in one run.

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


def _lookups(service: Any, videos: list[str], spec: str, picks: np.ndarray) -> dict[str, Any]:
    from search.neighbours import similar_to_video
    from search.rerank import parse_rerank

    options = parse_rerank(spec)
    similar_to_video(service, videos[int(picks[0])], 10, options)  # warm
    times, peaks = [], []
    for pick in picks:
        tracemalloc.start()
        started = time.perf_counter()
        similar_to_video(service, videos[int(pick)], 10, options)
        times.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # tracemalloc slows every allocation: time a second pass without it
    plain = []
    for pick in picks:
        started = time.perf_counter()
        similar_to_video(service, videos[int(pick)], 10, options)
        plain.append(time.perf_counter() - started)
    ms = np.asarray(plain) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "peak_kib_p50": round(float(np.percentile(peaks, 50)) / 1024, 1)}


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
                    for spec in OPTIONS:
                        figures[spec] = _lookups(lookup, videos, spec, picks)
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
