"""Ingest throughput against loopback fakes versus the model's own batched throughput.

Prints figures measured in one run (absolute times on shared machines are noisy,
ratios much less so):
  - model: img/s of ``embed`` alone on preprocessed batches (the ceiling);
  - ingest: img/s of ``thumbsearch ingest`` end to end (search pages, downloads,
    decoding, embedding, SQLite, FAISS) against fake YouTube servers on 127.0.0.1;
  - their ratio (how close the pipeline runs to the model);
  - CLI wall time of ``--help``, of a stored-video lookup, and of an image query.

Run: ``make bench`` or ``.venv/bin/python -m bench.ingest [--videos N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _catalogue(n: int) -> tuple[list[object], dict[str, list[str]]]:
    from indexer import samples
    from tests.fakes.youtube import FakeVideo

    photos = list(samples.sample_photos().values())
    videos = []
    for i in range(n):
        photo = photos[i % len(photos)]
        _, frame = samples.make_variants(photo, 1, seed=i)[0]
        video = FakeVideo(video_id=samples.video_id_for(f"bench:{i}"),
                          title=f"bench video {i}", frame=frame)
        video.thumbnail_jpeg("mqdefault")  # rendered now, so the timing is ours, not the fake's
        videos.append(video)
    return videos, {"bench": [v.video_id for v in videos]}


def _cli_seconds(args: list[str], env: dict[str, str]) -> float:
    exe = Path(sys.executable).with_name("thumbsearch")
    start = time.perf_counter()
    subprocess.run([str(exe), *args], env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=400, help="videos to ingest (max 500)")
    parser.add_argument("--batch", type=int, default=32, help="model batch size")
    args = parser.parse_args()

    from indexer.ingest import ingest_queries
    from indexer.models import load_embedder
    from indexer.service import build_service
    from indexer.settings import Settings
    from tests.fakes.youtube import FakeYouTube

    videos, searches = _catalogue(min(args.videos, 500))
    embedder = load_embedder("efficientnet-lite0")
    h, w = embedder.input_size
    batch = np.random.default_rng(0).uniform(-1, 1, (args.batch, h, w, 3)).astype(np.float32)
    embedder.embed(batch)  # warm-up: first call builds the graph
    rounds = max(2, len(videos) // args.batch)
    start = time.perf_counter()
    for _ in range(rounds):
        embedder.embed(batch)
    model_rate = rounds * args.batch / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as home, FakeYouTube(videos, searches) as fake:
        env = {**os.environ, "THUMBSEARCH_HOME": home, "YOUTUBE_API_KEY": fake.api_key,
               "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
               "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
               "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host}
        settings = Settings.from_env(env)
        service = build_service(settings, embedder=embedder)
        pages = (len(videos) + 49) // 50
        start = time.perf_counter()
        summary = ingest_queries(service, ["bench"], pages=pages, per_page=50)
        ingest_seconds = time.perf_counter() - start
        ingest_rate = summary.new / ingest_seconds
        t = summary.times
        help_s = _cli_seconds(["--help"], env)
        lookup_s = _cli_seconds(["similar", searches["bench"][0], "-k", "10"], env)
        image_s = _cli_seconds(["similar", "--image",
                                fake.thumbnail_url(searches["bench"][1]), "-k", "10"], env)

    print(f"videos ingested            {summary.new} ({summary.pages} pages, "
          f"{len(summary.failed)} failed)")
    print(f"model embed, batch {args.batch:<3}     {model_rate:7.1f} img/s")
    print(f"ingest end to end          {ingest_rate:7.1f} img/s")
    print(f"ingest / model             {ingest_rate / model_rate:7.2f}")
    print(f"stage seconds              load {t.load:.1f} (summed over threads), "
          f"embed {t.embed:.1f}, write {t.write:.2f}, wall {ingest_seconds:.1f}")
    print(f"CLI --help                 {help_s:7.2f} s")
    print(f"CLI similar <stored id>    {lookup_s:7.2f} s  ({lookup_s / help_s:.1f}x --help)")
    print(f"CLI similar --image URL    {image_s:7.2f} s  ({image_s / help_s:.1f}x --help; "
          "loads the model)")


if __name__ == "__main__":
    main()
