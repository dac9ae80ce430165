"""Ingest throughput and its non-model CPU against the model's own, in one run.

Figures measured in one run (absolute times on shared machines are noisy, ratios
much less so), with the fake YouTube (API and thumbnail host) in a child process
(``bench.fakehost``), so the ingest process's CPU time is its own work only:
  - model: img/s of ``embed`` alone on preprocessed batches (the ceiling), and its
    process CPU per image, measured right before and right after each ingest, averaged;
  - ingest: img/s of ``thumbsearch ingest`` end to end (search pages, downloads,
    decoding, preprocessing, embedding, SQLite, FAISS) through the library call the
    CLI makes; their ratio ``ingest_vs_model`` (how close the pipeline runs to the
    model), the median of the rounds;
  - the non-model CPU per thumbnail (``nonmodel_cpu_us``): the process CPU of the same
    ingest with a stand-in model whose ``embed`` costs next to nothing, per stored image,
    split by step (each step's own-thread CPU; ``other`` is the rest: search and metadata
    calls, the driving thread); ``nonmodel_cpu_vs_model`` is it over the model's CPU per
    image. ``nonmodel_cpu_us_in_ingest`` cross-checks it from the real ingest (its CPU
    less the model's, which contention makes larger);
  - how the ingest's wall time splits: the share of it the model was busy, and the
    model's own speed inside the ingest (it shares the CPU with decoding);
  - unless ``quick``, the CLI wall time of ``--help``, of a stored-video lookup and of
    an image query (subprocesses), under ``cli_*`` keys.

Run: ``make bench`` or ``.venv/bin/python -m bench.ingest [--videos N] [--quick]``;
it prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bench.fakehost import FakeHost
    from indexer.ingest.summary import IngestSummary
    from indexer.models import Embedder
    from tests.fakes.youtube import FakeVideo, FakeYouTube

__all__ = ["catalogue", "main", "measure", "model_cpu", "model_rate", "youtube_env"]


def catalogue(n: int, prefix: str = "bench") -> tuple[list[FakeVideo], dict[str, list[str]]]:
    """``n`` fake videos (real photos, each varied) found by the search ``prefix``."""
    from search.eval import samples
    from tests.fakes.youtube import FakeVideo

    photos = list(samples.sample_photos().values())
    videos = []
    for i in range(n):
        photo = photos[i % len(photos)]
        _, frame = samples.make_variants(photo, 1, seed=i)[0]
        video = FakeVideo(video_id=samples.video_id_for(f"{prefix}:{i}"),
                          title=f"{prefix} video {i}", frame=frame)
        video.thumbnail_jpeg("mqdefault")  # rendered now, so the timing is ours, not the fake's
        videos.append(video)
    return videos, {prefix: [v.video_id for v in videos]}


def youtube_env(fake: FakeYouTube, home: str, model: str,
                runtime: str = "auto") -> dict[str, str]:
    """The environment pointing thumbsearch at ``fake``, with its data under ``home``."""
    return {**os.environ, "THUMBSEARCH_HOME": home, "YOUTUBE_API_KEY": fake.api_key,
            "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
            "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
            "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host, "THUMBSEARCH_MODEL": model,
            "THUMBSEARCH_RUNTIME": runtime}


def model_rate(embedder: Embedder, batch: int, images: int) -> float:
    """img/s of ``embed`` alone on random preprocessed batches of ``batch`` (warm)."""
    h, w = embedder.input_size
    inputs = np.random.default_rng(0).uniform(-1, 1, (batch, h, w, 3)).astype(np.float32)
    rounds = max(1, images // batch)
    start = time.perf_counter()
    for _ in range(rounds):
        embedder.embed(inputs)
    return rounds * batch / (time.perf_counter() - start)


class _NoModel:
    """The embedder's id, sizes and preprocessing, with an ``embed`` that costs next to
    nothing: an ingest through it spends only the non-model CPU."""

    def __init__(self, embedder: Embedder) -> None:
        self.model_id, self.dim = embedder.model_id, embedder.dim
        self.input_size = embedder.input_size
        self.preprocess = embedder.preprocess
        self._pool = np.random.default_rng(1).standard_normal((4096, self.dim)).astype(np.float32)
        self._next = 0

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Distinct stored rows per call (a slice of a random pool, copied)."""
        start = self._next % (len(self._pool) - len(batch))
        self._next += len(batch)
        return self._pool[start:start + len(batch)].copy()


def model_cpu(embedder: Embedder, batch: int, images: int) -> tuple[float, float]:
    """(img/s, process CPU seconds per image) of ``embed`` alone, as ``model_rate``."""
    cpu = time.process_time()
    rate = model_rate(embedder, batch, images)
    rounds = max(1, images // batch)
    return rate, (time.process_time() - cpu) / (rounds * batch)


def _ingest(host: FakeHost, embedder: Embedder, batch: int, videos: int,
            runtime: str) -> tuple[IngestSummary, float, float]:
    """One ingest of the host's catalogue into a fresh home: (summary, wall s, CPU s)."""
    from indexer.ingest.queries import ingest_queries
    from indexer.service import build_service
    from indexer.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        env = host.env(home, embedder.model_id, runtime)
        settings = dataclasses.replace(Settings.from_env(env), batch_size=batch)
        with build_service(settings, embedder=embedder) as service:
            start, cpu = time.perf_counter(), time.process_time()
            summary = ingest_queries(service, [host.prefix], pages=(videos + 49) // 50,
                                     per_page=50)
            return summary, time.perf_counter() - start, time.process_time() - cpu


def _cpu_split(summary: IngestSummary, cpu: float) -> dict[str, float]:
    """Per stored image, in microseconds: each step's own-thread CPU and the rest
    (search pages and metadata calls, the driving thread, the model's helper threads)."""
    per = 1e6 / max(1, summary.new)
    steps = {f"{step}_us": seconds * per for step, seconds in summary.times.cpu.items()}
    steps["other_us"] = cpu * per - sum(steps.values())
    return steps


def measure(quick: bool = False, *, videos: int | None = None, batch: int | None = None,
            model: str | None = None, rounds: int | None = None,
            runtime: str | None = None) -> dict[str, Any]:
    """Model alone vs ingest end to end, in alternating rounds; see the module docstring.

    Defaults: the default model on the runtime THUMBSEARCH_RUNTIME names (else the
    default runtime), the default batch size, 300 videos and 3 rounds (``quick``: 100
    videos, 1 round, no CLI timings).
    """
    from bench.fakehost import FakeHost
    from indexer.models import load_embedder
    from indexer.settings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, parse_runtime

    videos = min(videos or (100 if quick else 300), 500)
    batch = batch or DEFAULT_BATCH_SIZE
    model = model or DEFAULT_MODEL
    rounds = rounds or (1 if quick else 3)
    runtime = parse_runtime(runtime or os.environ.get("THUMBSEARCH_RUNTIME", ""))
    embedder = load_embedder(model, runtime=runtime)
    model_rate(embedder, batch, batch)  # warm-up: the first calls allocate
    half = max(batch, videos // 2)
    rows: list[dict[str, float]] = []
    out: dict[str, Any] = {"model": embedder.model_id, "runtime": runtime,
                           "embedder": type(embedder).__name__, "videos": videos, "batch": batch,
                           "host": "a child process (bench.fakehost)"}
    with FakeHost(videos) as host:
        _ingest(host, _NoModel(embedder), batch, videos, runtime)  # warm-up: imports, caches
        for _ in range(rounds):
            before, before_cpu = model_cpu(embedder, batch, half)
            summary, seconds, cpu = _ingest(host, embedder, batch, videos, runtime)
            after, after_cpu = model_cpu(embedder, batch, half)
            bare, bare_seconds, bare_cpu = _ingest(host, _NoModel(embedder), batch, videos,
                                                   runtime)
            model_img_s, model_cpu_s = (before + after) / 2, (before_cpu + after_cpu) / 2
            rate = summary.new / seconds
            nonmodel_us = bare_cpu / max(1, bare.new) * 1e6
            times = summary.times
            rows.append({"model_img_s": model_img_s, "ingest_img_s": rate,
                         "ingest_vs_model": rate / model_img_s,
                         "model_cpu_us": model_cpu_s * 1e6,
                         "nonmodel_cpu_us": nonmodel_us,
                         "nonmodel_cpu_vs_model": nonmodel_us / (model_cpu_s * 1e6),
                         # the same from the real run: its CPU less the model's, per image
                         "nonmodel_cpu_us_in_ingest": (cpu / max(1, summary.new)
                                                       - model_cpu_s) * 1e6,
                         "nonmodel_img_s": bare.new / bare_seconds,
                         "model_busy": times.embed / seconds,
                         "model_in_ingest_img_s": summary.new / times.embed,
                         "load_s_summed": times.load, "write_s": times.write,
                         "stored": summary.new, "failed": len(summary.failed),
                         **{f"nonmodel_{k}": v for k, v in _cpu_split(bare, bare_cpu).items()}})
        if not quick:
            with tempfile.TemporaryDirectory() as home:
                _ingest_for_cli(host, embedder, batch, min(videos, 50), runtime, home)
                rows.append(_cli_figures(host.env(home, embedder.model_id, runtime), host))
    measured = [r for r in rows if "ingest_vs_model" in r]
    middle = sorted(measured, key=lambda r: r["ingest_vs_model"])[len(measured) // 2]
    out.update({key: round(value, 3) if isinstance(value, float) else value
                for key, value in middle.items()})
    out["ingest_vs_model_rounds"] = [round(r["ingest_vs_model"], 3) for r in measured]
    out["ingest_vs_model_spread"] = round(
        statistics.pstdev(out["ingest_vs_model_rounds"]), 3) if len(measured) > 1 else 0.0
    out["nonmodel_cpu_vs_model_rounds"] = [round(r["nonmodel_cpu_vs_model"], 3)
                                           for r in measured]
    for r in rows:
        if "cli_help_s" in r:
            out.update({k: round(v, 3) for k, v in r.items()})
    return out


def _ingest_for_cli(host: FakeHost, embedder: Embedder, batch: int, videos: int,
                    runtime: str, home: str) -> None:
    from indexer.ingest.queries import ingest_queries
    from indexer.service import build_service
    from indexer.settings import Settings

    settings = dataclasses.replace(Settings.from_env(host.env(home, embedder.model_id, runtime)),
                                   batch_size=batch)
    with build_service(settings, embedder=embedder) as service:
        ingest_queries(service, [host.prefix], pages=1, per_page=videos)


def _cli_seconds(args: list[str], env: dict[str, str]) -> float:
    exe = Path(sys.executable).with_name("thumbsearch")
    start = time.perf_counter()
    subprocess.run([str(exe), *args], env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def _cli_figures(env: dict[str, str], host: FakeHost) -> dict[str, float]:
    ids = host.ids
    return {"cli_help_s": _cli_seconds(["--help"], env),
            "cli_similar_id_s": _cli_seconds(["similar", ids[0], "-k", "10"], env),
            "cli_similar_image_s": _cli_seconds(
                ["similar", "--image", host.thumbnail_url(ids[1]), "-k", "10"], env)}


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, default=None, help="videos to ingest (max 500)")
    parser.add_argument("--batch", type=int, default=None, help="model batch size")
    parser.add_argument("--model", default=None, help="model id (default: the default model)")
    parser.add_argument("--rounds", type=int, default=None, help="model/ingest rounds")
    parser.add_argument("--runtime", default=None, help="model runtime (settings.RUNTIMES)")
    parser.add_argument("--quick", action="store_true", help="100 videos, 1 round, no CLI")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, videos=args.videos, batch=args.batch,
                             model=args.model, rounds=args.rounds, runtime=args.runtime),
                     indent=2))


if __name__ == "__main__":
    main()
