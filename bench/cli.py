"""Wall time of the command line against a corpus of 100,000 vectors (prints JSON).

Builds the corpus in a temporary THUMBSEARCH_HOME through the library (random unit
vectors of the default model, stored and indexed the way the tests seed a corpus,
in batches), then times, as subprocesses of the console script: ``thumbsearch
--help``, ``thumbsearch similar <stored id>`` and ``similar --ids-file`` with 100
stored ids. Each figure is the median of several runs after one warm-up. Not a part
of ``make bench`` (whose ``index`` part times ``thumbsearch similar`` at each size and
whose ``serve`` part measures the query service under load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer.records import VideoMeta
from indexer.service import build_service
from indexer.settings import DEFAULT_MODEL, Settings

__all__ = ["build_corpus", "main", "measure", "time_command"]

BATCH = 5_000
RUNS = 7


def _video_id(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    digits = []
    for _ in range(10):
        n, rest = divmod(n, 64)
        digits.append(alphabet[rest])
    return ("b" + "".join(reversed(digits)))[:11]


def build_corpus(home: Path, count: int, seed: int = 0,
                 index_type: str = "auto") -> tuple[list[str], dict[str, Any]]:
    """Store ``count`` videos with random unit vectors of the default model; save the index.

    ``auto`` saves the index as an ingest does (its type chosen for the corpus size);
    another type (``flat``, ``ivf``, ``hnsw``) builds that type, as ``index build --type``.
    """
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(home),
                                  "THUMBSEARCH_MODEL": DEFAULT_MODEL})
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    with build_service(settings) as service:
        service.prepare_for_writing()
        index = service.index()
        for start in range(0, count, BATCH):
            names = [_video_id(i) for i in range(start, min(count, start + BATCH))]
            metas = [VideoMeta(video_id=v, source="bench", title=f"video {v}",
                               thumbnail_url=f"https://i.ytimg.com/vi/{v}/mqdefault.jpg")
                     for v in names]
            vectors = rng.standard_normal((len(names), service.spec.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            row_ids = service.store.add_embedded(metas, vectors, service.spec.model_id)
            index.add(row_ids, vectors)
            ids.extend(names)
        if index_type == "auto":
            index.save()
        else:
            index.rebuild(service.store, index_type)
        info = index.info()
        return ids, {"index_type": info.type, "index_size": info.size}


def time_command(argv: list[str], env: dict[str, str], runs: int = RUNS) -> float:
    """Median wall time (s) of ``argv`` over ``runs`` runs after one warm-up; must exit 0."""
    times = []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}")
        if attempt:
            times.append(elapsed)
    return statistics.median(times)


def measure(quick: bool = False, index_type: str = "auto") -> dict[str, Any]:
    """Build the corpus (10,000 vectors when ``quick``) and time the three commands."""
    count = 10_000 if quick else 100_000
    exe = str(Path(sys.executable).with_name("thumbsearch"))
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-cli-") as tmp:
        home = Path(tmp) / "home"
        start = time.perf_counter()
        ids, index = build_corpus(home, count, index_type=index_type)
        build_s = time.perf_counter() - start
        env = {k: v for k, v in os.environ.items() if not k.startswith(("THUMBSEARCH_",
                                                                        "YOUTUBE_"))}
        env["THUMBSEARCH_HOME"] = str(home)
        rng = np.random.default_rng(1)
        picked = [ids[int(i)] for i in rng.choice(len(ids), size=100, replace=False)]
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(picked) + "\n", encoding="utf-8")
        python_s = time_command([sys.executable, "-c", "pass"], env)
        help_s = time_command([exe, "--help"], env)
        similar_s = time_command([exe, "similar", picked[0]], env)
        ids_file_s = time_command([exe, "similar", "--ids-file", str(ids_file), "--json"], env)
    return {
        "corpus_vectors": count,
        "help_s": round(help_s, 3),
        "similar_s": round(similar_s, 3),
        "ids_file_100_s": round(ids_file_s, 3),
        "python_startup_s": round(python_s, 3),
        "build_corpus_s": round(build_s, 1),
        **index,
    }


def main() -> None:
    """Print the figures as one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.cli")
    parser.add_argument("--quick", action="store_true", help="10,000 vectors instead of 100,000")
    parser.add_argument("--index-type", default="auto", choices=("auto", "flat", "ivf", "hnsw"),
                        help="index type of the corpus (auto: as an ingest saves it)")
    args = parser.parse_args()
    print(json.dumps(measure(quick=args.quick, index_type=args.index_type), indent=1))


if __name__ == "__main__":
    main()
