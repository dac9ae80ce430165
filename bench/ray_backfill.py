"""``add-ids`` throughput: in one process versus on a local Ray with 1 and 2 embedding actors.

The same list of ids (real photos made into thumbnails, served by the fake thumbnail
host on 127.0.0.1) is ingested into a fresh data directory by each way, with the
default offline model on its default runtime, thumbnails only (``--no-details``: the
videos.list calls are the same either way). Each home starts with the converted model
already in its cache, as a second run would, so no run pays the conversion. Figures:
  - ``model_img_s``: the model alone on preprocessed batches in this process (the ceiling);
  - per way: wall seconds of the whole call (for Ray: starting the local Ray, actors
    loading the model, and stopping it again, all included) and thumbnails stored per
    second; the stage times the run recorded (load summed over workers, embed, write);
    for Ray also the seconds to start and stop it and the pipeline's own seconds and
    rate (from the dataset's start to its last batch written: actors loading the model
    included);
  - ``*_vs_single``: each Ray way's thumbnails/s over the single process's, whole calls
    and (``*_pipeline_vs_single``) the pipeline alone, one run.

On a 2-core machine the Ray ways share the two cores with the Ray processes themselves;
the figures say what a local Ray costs and brings there, not what a cluster brings.

Run: ``.venv/bin/python -m bench --only ray_backfill`` or
``.venv/bin/python -m bench.ray_backfill [--videos N]``; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "measure"]

WAYS = (("single", None), ("ray_1_worker", 1), ("ray_2_workers", 2))


def measure(quick: bool = False, *, videos: int | None = None) -> dict[str, Any]:
    """The three ways over the same ids; see the module docstring. Default 600 ids
    (``quick``: 100)."""
    from bench.ingest import catalogue, model_rate, youtube_env
    from indexer.ingest.idlist import add_video_ids
    from indexer.ingest.ray_backfill import RayOptions, RayStage
    from indexer.service import build_service
    from indexer.settings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, Settings
    from tests.fakes.youtube import FakeYouTube

    count = videos or (100 if quick else 600)
    fakes, searches = catalogue(count, prefix="backfill")
    ids = searches["backfill"]
    out: dict[str, Any] = {"model": DEFAULT_MODEL, "videos": count, "details": False,
                           "batch": DEFAULT_BATCH_SIZE}
    with FakeYouTube(fakes, searches) as fake, tempfile.TemporaryDirectory() as root:
        models = Path(root) / "warm" / "models"
        with build_service(Settings.from_env(youtube_env(fake, str(models.parent),
                                                         DEFAULT_MODEL))) as warm:
            embedder = warm.embedder  # a LiteRT model is converted once, into warm/models
        out["runtime"] = type(embedder).__name__
        model_rate(embedder, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE)  # warm-up
        out["model_img_s"] = round(model_rate(embedder, DEFAULT_BATCH_SIZE, 256), 1)
        for name, workers in WAYS:
            home = Path(root) / name
            if models.is_dir():  # the bf16 runtime keeps no converted file
                shutil.copytree(models, home / "models")
            settings = Settings.from_env(youtube_env(fake, str(home), DEFAULT_MODEL))
            with build_service(settings) as service:
                stage = None if workers is None else RayStage(RayOptions(workers=workers), settings)
                start = time.perf_counter()
                summary = add_video_ids(service, ids, details=False, stage=stage)
                seconds = time.perf_counter() - start
            times = summary.run.times
            figures: dict[str, Any] = {
                "seconds": round(seconds, 2),
                "thumbnails_per_s": round(summary.run.new / seconds, 1),
                "stored": summary.run.new, "failed": len(summary.run.failed),
                "load_s_summed": round(times.load, 2), "embed_s": round(times.embed, 2),
                "write_s": round(times.write, 2)}
            if stage is not None:
                pipeline = stage.seconds["pipeline"]
                figures.update({"workers": workers,
                                "ray_start_s": round(stage.seconds["start"], 2),
                                "ray_stop_s": round(stage.seconds["stop"], 2),
                                "pipeline_s": round(pipeline, 2),
                                "pipeline_thumbnails_per_s": round(summary.run.new / pipeline, 1)})
            out[name] = figures
        single = out["single"]["thumbnails_per_s"]
        for name, workers in WAYS:
            if workers is not None:
                out[f"{name}_vs_single"] = round(out[name]["thumbnails_per_s"] / single, 3)
                out[f"{name}_pipeline_vs_single"] = round(
                    out[name]["pipeline_thumbnails_per_s"] / single, 3)
        out["stored_alike"] = len({out[name]["stored"] for name, _ in WAYS}) == 1
    return out


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, default=None, help="ids to ingest (default 600)")
    parser.add_argument("--quick", action="store_true", help="100 ids")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, videos=args.videos), indent=2))


if __name__ == "__main__":
    main()
