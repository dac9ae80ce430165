"""Ingest throughput against loopback fakes versus the model's own batched throughput.

Figures measured in one run (absolute times on shared machines are noisy, ratios
much less so):
  - model: img/s of ``embed`` alone on preprocessed batches (the ceiling), measured
    right before and right after each ingest, and averaged;
  - ingest: img/s of ``thumbsearch ingest`` end to end (search pages, downloads,
    decoding, preprocessing, embedding, SQLite, FAISS) through the library call the
    CLI makes, against fake YouTube servers on 127.0.0.1;
  - their ratio (how close the pipeline runs to the model), the median of the rounds;
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
    from indexer.models import Embedder
    from tests.fakes.youtube import FakeVideo, FakeYouTube

__all__ = ["catalogue", "main", "measure", "model_rate", "youtube_env"]


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


def _cli_seconds(args: list[str], env: dict[str, str]) -> float:
    exe = Path(sys.executable).with_name("thumbsearch")
    start = time.perf_counter()
    subprocess.run([str(exe), *args], env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def measure(quick: bool = False, *, videos: int | None = None, batch: int | None = None,
            model: str | None = None, rounds: int | None = None,
            runtime: str | None = None) -> dict[str, Any]:
    """Model alone vs ingest end to end, in alternating rounds; see the module docstring.

    Defaults: the default model on the runtime THUMBSEARCH_RUNTIME names (else the
    default runtime), the default batch size, 300 videos and 3 rounds (``quick``: 100
    videos, 1 round, no CLI timings).
    """
    from indexer.ingest.queries import ingest_queries
    from indexer.models import load_embedder
    from indexer.service import build_service
    from indexer.settings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, Settings, parse_runtime
    from tests.fakes.youtube import FakeYouTube

    videos = min(videos or (100 if quick else 300), 500)
    batch = batch or DEFAULT_BATCH_SIZE
    model = model or DEFAULT_MODEL
    rounds = rounds or (1 if quick else 3)
    runtime = parse_runtime(runtime or os.environ.get("THUMBSEARCH_RUNTIME", ""))
    fakes, searches = catalogue(videos)
    embedder = load_embedder(model, runtime=runtime)
    model_rate(embedder, batch, batch)  # warm-up: the first calls allocate
    half = max(batch, videos // 2)
    rows: list[dict[str, float]] = []
    out: dict[str, Any] = {"model": embedder.model_id, "runtime": runtime,
                           "embedder": type(embedder).__name__, "videos": videos, "batch": batch}
    with FakeYouTube(fakes, searches) as fake:
        for _ in range(rounds):
            before = model_rate(embedder, batch, half)
            with tempfile.TemporaryDirectory() as home:
                env = youtube_env(fake, home, embedder.model_id, runtime)
                settings = dataclasses.replace(Settings.from_env(env), batch_size=batch)
                with build_service(settings, embedder=embedder) as service:
                    start = time.perf_counter()
                    summary = ingest_queries(service, ["bench"], pages=(videos + 49) // 50,
                                             per_page=50)
                    seconds = time.perf_counter() - start
                if not quick and not any("cli_help_s" in r for r in rows):
                    rows.append(_cli_figures(env, searches["bench"], fake))
            after = model_rate(embedder, batch, half)
            rate = summary.new / seconds
            times = summary.times
            rows.append({"model_img_s": (before + after) / 2, "ingest_img_s": rate,
                         "ingest_vs_model": rate / ((before + after) / 2),
                         "model_busy": times.embed / seconds,
                         "model_in_ingest_img_s": summary.new / times.embed,
                         "load_s_summed": times.load, "write_s": times.write,
                         "stored": summary.new, "failed": len(summary.failed)})
    measured = [r for r in rows if "ingest_vs_model" in r]
    middle = sorted(measured, key=lambda r: r["ingest_vs_model"])[len(measured) // 2]
    out.update({key: round(value, 3) if isinstance(value, float) else value
                for key, value in middle.items()})
    out["ingest_vs_model_rounds"] = [round(r["ingest_vs_model"], 3) for r in measured]
    out["ingest_vs_model_spread"] = round(
        statistics.pstdev(out["ingest_vs_model_rounds"]), 3) if len(measured) > 1 else 0.0
    for r in rows:
        if "cli_help_s" in r:
            out.update({k: round(v, 3) for k, v in r.items()})
    return out


def _cli_figures(env: dict[str, str], ids: list[str], fake: FakeYouTube) -> dict[str, float]:
    return {"cli_help_s": _cli_seconds(["--help"], env),
            "cli_similar_id_s": _cli_seconds(["similar", ids[0], "-k", "10"], env),
            "cli_similar_image_s": _cli_seconds(
                ["similar", "--image", fake.thumbnail_url(ids[1]), "-k", "10"], env)}


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
