"""Ingest throughput on SQLite versus PostgreSQL, and PostgreSQL with two workers.

The same video ids are ingested (``thumbsearch add-ids --no-details``: thumbnails from
a fake thumbnail host on 127.0.0.1, decoded, embedded by the real default model, stored,
indexed) into a fresh store each time:
  - ``sqlite``: one worker, the default SQLite file in its data directory;
  - ``postgres``: one worker, a database on a throwaway PostgreSQL server on 127.0.0.1
    (Debian's, started as the tests start it: fsync off);
  - ``postgres_2_workers``: two workers at once, each a host of its own (its own data
    directory), sharing that database and dividing the ids by claims.
Each worker is a process that loads the model and warms it up first; the clock starts
when every worker of a setup is ready and stops when the last one has finished (index
saved), so the figures are thumbnails per second of ingest, model loading excluded.
On a machine shared with other work, absolute figures are noisy: compare the setups
of one run.

Run: ``.venv/bin/python -m bench.stores [--videos N] [--rounds N]``; it prints one
JSON object. Needs PostgreSQL installed (``apt-get install postgresql``).
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
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SETUPS", "main", "measure", "worker"]

SETUPS = {"sqlite": 1, "postgres": 1, "postgres_2_workers": 2}
READY_TIMEOUT = 900.0  # seconds for a worker to load its model


def worker(ids_file: Path, ready: Path, go: Path) -> dict[str, Any]:
    """One worker process: load and warm the model, signal ``ready``, wait for ``go``, then
    ingest the ids; its figures (stored count and wall-clock start and end)."""
    from bench.ingest import model_rate
    from indexer.ingest.idlist import add_video_ids
    from indexer.service import build_service
    from indexer.settings import Settings

    settings = Settings.from_env()
    with build_service(settings) as service:
        service.prepare_for_writing()
        model_rate(service.embedder, settings.batch_size, settings.batch_size)  # warm-up
        ready.touch()
        deadline = time.monotonic() + READY_TIMEOUT
        while not go.exists():
            if time.monotonic() > deadline:
                raise SystemExit("the go file never appeared")
            time.sleep(0.01)
        start = time.time()
        result = add_video_ids(service, ids_file.read_text().split(), details=False)
        end = time.time()
    return {"new": result.run.new, "failed": len(result.run.failed), "start": start,
            "end": end}


def _env(base: dict[str, str], home: Path, url: str | None, models: Path,
         name: str) -> dict[str, str]:
    home.mkdir(parents=True)
    (home / "models").symlink_to(models)  # the converted model, shared: converted once
    env = {**base, "THUMBSEARCH_HOME": str(home), "THUMBSEARCH_WORKER_NAME": name}
    if url:
        env["THUMBSEARCH_DATABASE_URL"] = url
    return env


def _run_setup(workers: int, envs: list[dict[str, str]], ids_file: Path,
               scratch: Path) -> dict[str, Any]:
    go = scratch / "go"
    children, readies, outputs = [], [], []
    for n, env in enumerate(envs[:workers]):
        ready, output = scratch / f"ready-{n}", scratch / f"worker-{n}.json"
        with output.open("w") as out:
            children.append(subprocess.Popen(
                [sys.executable, "-m", "bench.stores", "--worker", str(ids_file),
                 str(ready), str(go)], env=env, stdout=out,
                cwd=Path(__file__).resolve().parent.parent))
        readies.append(ready)
        outputs.append(output)
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(r.exists() for r in readies):
        if any(c.poll() is not None for c in children) or time.monotonic() > deadline:
            for child in children:
                child.kill()
            raise SystemExit(f"a worker failed to start: {[o.read_text() for o in outputs]}")
        time.sleep(0.05)
    go.touch()
    for child in children:
        if child.wait(timeout=3600) != 0:
            raise SystemExit(f"a worker failed: {[o.read_text() for o in outputs]}")
    figures = [json.loads(o.read_text().strip().splitlines()[-1]) for o in outputs]
    seconds = max(f["end"] for f in figures) - min(f["start"] for f in figures)
    stored = sum(f["new"] for f in figures)
    return {"seconds": round(seconds, 3), "stored": stored,
            "thumbnails_per_s": round(stored / seconds, 2),
            "per_worker_stored": [f["new"] for f in figures],
            "failed": sum(f["failed"] for f in figures)}


def measure(videos: int = 300, rounds: int = 1) -> dict[str, Any]:
    """Every setup ``rounds`` times, interleaved; see the module docstring."""
    from bench.ingest import catalogue, model_rate
    from indexer.models import load_embedder
    from indexer.settings import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, Settings
    from tests.fakes.youtube import FakeYouTube
    from tests.pg import pg_binaries, start_server, stop_server

    bindir = pg_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    fakes, searches = catalogue(videos)
    ids = searches["bench"]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in SETUPS}
    out: dict[str, Any] = {"videos": videos, "rounds": rounds, "model": DEFAULT_MODEL,
                           "batch": DEFAULT_BATCH_SIZE, "cpus": os.cpu_count()}
    server, root = start_server(bindir)
    try:
        with tempfile.TemporaryDirectory() as tmp, FakeYouTube(fakes, searches) as fake:
            scratch = Path(tmp)
            models = scratch / "models"
            models.mkdir()
            settings = Settings.from_env({"THUMBSEARCH_HOME": str(scratch / "probe")})
            embedder = load_embedder(settings.model, runtime=settings.runtime,
                                     cache_dir=models)  # converted once, here
            model_rate(embedder, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE)
            out["model_alone_img_s"] = round(model_rate(embedder, DEFAULT_BATCH_SIZE, 256), 2)
            out["embedder"] = type(embedder).__name__
            ids_file = scratch / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            base = {**os.environ, "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
                    "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host}
            for number in range(rounds):
                for name, workers in SETUPS.items():
                    run = scratch / f"{name}-{number}"
                    url = None
                    if name.startswith("postgres"):
                        database = f"bench_{uuid.uuid4().hex[:12]}"
                        server.admin(f'CREATE DATABASE "{database}" TEMPLATE template0')
                        url = server.url(database)
                    envs = [_env(base, run / f"host-{n}", url, models, f"host-{n}")
                            for n in range(workers)]
                    results[name].append(_run_setup(workers, envs, ids_file, run))
    finally:
        stop_server(server, root)
    for name, runs in results.items():
        middle = sorted(runs, key=lambda r: r["thumbnails_per_s"])[len(runs) // 2]
        out[name] = {**middle, "rounds_per_s": [r["thumbnails_per_s"] for r in runs],
                     "spread": round(statistics.pstdev([r["thumbnails_per_s"] for r in runs]),
                                     2) if len(runs) > 1 else 0.0}
    sqlite = out["sqlite"]["thumbnails_per_s"]
    out["postgres_vs_sqlite"] = round(out["postgres"]["thumbnails_per_s"] / sqlite, 3)
    out["postgres_2_workers_vs_1"] = round(
        out["postgres_2_workers"]["thumbnails_per_s"] / out["postgres"]["thumbnails_per_s"], 3)
    return out


def main() -> None:
    """Run the benchmark and print its figures as JSON (or be one worker: ``--worker``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, default=300, help="video ids to ingest (max 500)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every setup")
    parser.add_argument("--worker", nargs=3, type=Path, metavar=("IDS", "READY", "GO"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    print(json.dumps(measure(min(args.videos, 500), max(1, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
