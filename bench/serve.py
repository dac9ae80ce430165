"""``thumbsearch serve`` under a load generator (wrk), beside the library's own rates.

The corpus is made as ``bench/index.py`` makes its own (synthetic clustered unit vectors
of the default model, stored through the library), with an IVF index built from the
database. ``thumbsearch serve --port 0`` then runs as a real process on loopback, and
Debian's ``wrk`` loads it through a small Lua script (``LUA`` below):

  - stored-id lookups, ``GET /api/similar/<id>?k=10`` with a random stored id a request,
    at 1, 4 and 16 concurrent connections: requests/s, p50 and p99 (wrk's latency
    distribution);
  - image uploads, ``POST /api/similar`` (multipart; real photos as 320x180 JPEGs), at
    1 and 4 connections.

In the same run, with the server idle, the library's own rates: ``similar_to_video`` in a
loop on one thread and on two (reading the database as the server does), and for uploads
``similar_to_bytes`` on one thread and the model's ``embed`` alone at batch 1 and at the
ingest batch size. The library and the server take turns (three rounds), so a change in
the machine's load falls on both. ``serve_vs_library_16`` is the server's mean rate at 16
connections over the library's better mean rate (one thread or two); percentiles are the
median of the rounds'. Every request must answer 200.

Run: ``.venv/bin/python -m bench.serve [--size N] [--seconds S] [--rounds R]`` (``python -m bench
--only serve`` runs it at 1,000,000 vectors).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LUA", "build_corpus", "library_rate", "main", "measure", "measure_home", "parse_wrk",
           "run_wrk", "serving", "upload_bodies"]

FULL_SIZE = 1_000_000
QUICK_SIZE = 20_000
CONNECTIONS = (1, 4, 16)
UPLOAD_CONNECTIONS = (1, 4)
QUERY_IDS = 10_000  # stored ids the load draws from
BOUNDARY = "thumbsearchbenchboundary"
_MARK = "WRK-JSON "
_SERVING = re.compile(r"serving (http://\S+?)/? ")

#: The wrk script. Arguments after ``--``: the mode (``ids`` or ``upload``), a file with one
#: stored id (or one multipart body file) a line, and a seed. Each thread draws its own
#: random sequence; ``done`` prints the figures as one JSON line after ``WRK-JSON``.
LUA = r"""
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
end

function init(args)
  mode = args[1]
  math.randomseed(thread_number * 7919 + tonumber(args[3]))
  items = {}
  for line in io.lines(args[2]) do
    if mode == "upload" then
      local handle = assert(io.open(line, "rb"))
      items[#items + 1] = handle:read("*a")
      handle:close()
    else
      items[#items + 1] = line
    end
  end
  upload_headers = {["Content-Type"] = "multipart/form-data; boundary=BOUNDARY"}
end

function request()
  local item = items[math.random(#items)]
  if mode == "upload" then
    return wrk.format("POST", "/api/similar", upload_headers, item)
  end
  return wrk.format("GET", "/api/similar/" .. item .. "?k=10")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "non_2xx": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
""".replace("BOUNDARY", BOUNDARY)


def build_corpus(home: Path, size: int, seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """Store ``size`` clustered vectors of the default model in ``home``; build an IVF index.

    Returns the stored video ids and how the index was built.
    """
    import dataclasses

    from bench.index import CLUSTER, DIM, MODEL, _metas, synthetic
    from indexer.doctor import rebuild_index
    from indexer.service import build_service
    from indexer.settings import Settings

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, size // CLUSTER), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    settings = dataclasses.replace(Settings.from_env({"THUMBSEARCH_HOME": str(home)}),
                                   model=MODEL)
    videos: list[str] = []
    with build_service(settings) as service:
        service.prepare_for_writing()
        for start in range(0, size, 50_000):
            n = min(50_000, size - start)
            metas = _metas(start, n)
            service.store.add_embedded(metas, synthetic(n, seed + start, centres), MODEL)
            videos.extend(m.video_id for m in metas)
        report = rebuild_index(service, kind="ivf")
    return videos, {"type": report.type, "factory": report.factory, "params": report.params,
                    "recall_at_10_at_build": report.recall_at_10}


def _env(home: Path) -> dict[str, str]:
    from bench.index import MODEL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("THUMBSEARCH_", "YOUTUBE_"))}
    env.update(THUMBSEARCH_HOME=str(home), THUMBSEARCH_MODEL=MODEL)
    return env


@contextlib.contextmanager
def serving(home: Path, timeout: float = 60.0) -> Iterator[tuple[str, int]]:
    """``thumbsearch serve --port 0`` on loopback as a child process: (base URL, its pid).

    Stopped with SIGINT (as Ctrl-C) when the block ends, SIGKILL if it lingers.
    """
    exe = str(Path(sys.executable).with_name("thumbsearch"))
    with subprocess.Popen([exe, "serve", "--port", "0"], env=_env(home),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as child:
        assert child.stderr is not None
        stderr = child.stderr
        lines: list[str] = []
        # The first line names the address; the rest is read (and kept) so the pipe never fills.
        drain = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
        drain.start()
        try:
            deadline = time.monotonic() + timeout
            while not lines and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            match = _SERVING.search(lines[0]) if lines else None
            if match is None:
                raise RuntimeError(f"thumbsearch serve did not start: {lines[:3]}")
            yield match.group(1), child.pid
        finally:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            drain.join(5)


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The figures of one wrk run, from the JSON line the script's ``done`` prints."""
    line = next((x for x in stdout.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"no figures in wrk's output: {stdout[-500:]!r}")
    raw = json.loads(line[len(_MARK):])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {"requests": raw["requests"], "seconds": round(seconds, 2),
            "requests_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
            "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "mean_ms": round(raw["mean_us"] / 1000, 3), "non_2xx": raw["non_2xx"],
            "socket_errors": errors}


def run_wrk(url: str, mode: str, items_file: Path, connections: int, seconds: float,
            script: Path, seed: int = 0) -> dict[str, Any]:
    """One wrk run of ``seconds`` at ``connections``; RuntimeError unless every answer is 2xx."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    threads = min(connections, 2)
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "--latency", "-s", str(script), url, "--",
            mode, str(items_file), str(seed)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip()[-500:]}")
    figures = parse_wrk(done.stdout)
    if figures["non_2xx"] or figures["socket_errors"] or not figures["requests"]:
        raise RuntimeError(f"wrk against {url} ({mode}, {connections} connections): "
                           f"{figures}")
    return {"connections": connections, "threads": threads, **figures}


def library_rate(service: Any, ids: Sequence[str], seconds: float, threads: int) -> float:
    """Lookups/s of ``similar_to_video(service, id, 10)`` on ``threads`` threads for
    ``seconds``, random stored ids (each thread its own)."""
    from search.neighbours import similar_to_video

    counts = [0] * threads
    start_line = threading.Barrier(threads + 1)
    stop = threading.Event()

    def loop(slot: int) -> None:
        rng = np.random.default_rng(slot + 1)
        start_line.wait()
        while not stop.is_set():
            similar_to_video(service, ids[int(rng.integers(len(ids)))], 10)
            counts[slot] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start_line.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def upload_bodies(folder: Path, count: int = 8) -> Path:
    """Multipart bodies of real photos as 320x180 JPEGs, one file each; returns the list file."""
    from search.eval.samples import sample_photos

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for n, (name, photo) in enumerate(list(sample_photos().items())[:count]):
        buffer = io.BytesIO()
        photo.convert("RGB").resize((320, 180)).save(buffer, "JPEG", quality=85)
        body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"{name}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
        body += buffer.getvalue()
        body += f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n10" \
                f"\r\n--{BOUNDARY}--\r\n".encode()
        path = folder / f"body-{n}.bin"
        path.write_bytes(body)
        names.append(str(path))
    listing = folder / "bodies.txt"
    listing.write_text("\n".join(names) + "\n", encoding="utf-8")
    return listing


def _jpegs(listing: Path) -> list[bytes]:
    """The JPEG bytes inside the multipart bodies ``upload_bodies`` wrote."""
    out = []
    for line in listing.read_text(encoding="utf-8").split():
        body = Path(line).read_bytes()
        start = body.index(b"\r\n\r\n") + 4
        out.append(body[start:body.index(f"\r\n--{BOUNDARY}".encode(), start)])
    return out


def _upload_library(service: Any, jpegs: list[bytes], seconds: float) -> dict[str, float]:
    """The library's upload path (``similar_to_bytes``) on one thread, and the model alone."""
    from bench.ingest import model_rate
    from indexer.settings import DEFAULT_BATCH_SIZE
    from search.neighbours import similar_to_bytes

    for data in jpegs:  # warm-up: loads the model
        similar_to_bytes(service, data, "warm.jpg", 10)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        similar_to_bytes(service, jpegs[done % len(jpegs)], "q.jpg", 10)
        done += 1
    library = done / (time.perf_counter() - started)
    embedder = service.embedder
    single = model_rate(embedder, 1, max(20, round(library * seconds)))
    batched = model_rate(embedder, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE * 4)
    return {"library_upload_1_thread_s": round(library, 2), "model_batch_1_img_s": round(single, 2),
            f"model_batch_{DEFAULT_BATCH_SIZE}_img_s": round(batched, 2)}


def measure(quick: bool = False, *, size: int | None = None, seconds: float | None = None,
            rounds: int | None = None, home: Path | None = None,
            videos: Sequence[str] | None = None) -> dict[str, Any]:
    """Build the corpus, load the server, measure the library; see the module docstring.

    With ``home`` and its stored ``videos`` (``make bench`` passes the index part's largest
    corpus, an ``ivf`` index built) no corpus is built."""
    if home is not None and videos is not None:
        out = measure_home(home, videos, seconds or (3.0 if quick else 10.0),
                           rounds=rounds or (1 if quick else 3))
        return {"vectors": len(videos), "index": "the index part's largest corpus", **out}
    size = size or (QUICK_SIZE if quick else FULL_SIZE)
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-serve-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        videos, index = build_corpus(home, size)
        build_s = round(time.perf_counter() - started, 1)
        out = measure_home(home, videos, seconds or (3.0 if quick else 10.0),
                           rounds=rounds or (1 if quick else 3))
    return {"vectors": size, "index": index, "build_corpus_s": build_s, **out}


def measure_home(home: Path, videos: Sequence[str], seconds: float,
                 rounds: int = 3) -> dict[str, Any]:
    """The figures against the corpus stored in ``home`` (default model, index built), whose
    stored video ids are ``videos``: the library's rates, then the server under wrk."""
    import dataclasses

    from bench.index import MODEL
    from indexer.service import build_service
    from indexer.settings import Settings
    from search.neighbours import similar_to_video

    out: dict[str, Any] = {"seconds_a_run": seconds,
                           "generator": "wrk (Debian), Lua script: a random stored id a request"}
    rng = np.random.default_rng(1)
    ids = [videos[int(i)] for i in rng.choice(len(videos), min(QUERY_IDS, len(videos)),
                                              replace=False)]
    with tempfile.TemporaryDirectory(prefix="thumbsearch-bench-load-") as tmp:
        root = Path(tmp)
        ids_file = root / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
        bodies = upload_bodies(root / "bodies")
        script = root / "load.lua"
        script.write_text(LUA, encoding="utf-8")
        settings = dataclasses.replace(Settings.from_env({"THUMBSEARCH_HOME": str(home)}),
                                       model=MODEL)
        # Lookups read SQLite through sqlite3, as the server and `thumbsearch similar` do.
        # The library and the server take turns, ROUNDS times, so that a change in the
        # machine's load falls on both sides of the ratio.
        library: dict[int, list[float]] = {1: [], 2: []}
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in CONNECTIONS}
        with build_service(settings, lookups_only=True) as service, \
                serving(home) as (url, pid):
            out["server_rss_mib_start"] = _rss_mib(pid)
            for video in ids[:200]:  # warm: the index opened, its pages read once
                similar_to_video(service, video, 10)
            run_wrk(url, "ids", ids_file, 4, min(2.0, seconds), script, seed=99)  # warm-up
            for turn in range(rounds):
                for threads in library:
                    library[threads].append(library_rate(service, ids, seconds, threads))
                for c in CONNECTIONS:
                    runs[c].append(run_wrk(url, "ids", ids_file, c, seconds, script,
                                           seed=100 * turn + c))
            out.update(_upload_library(service, _jpegs(bodies), seconds))
            run_wrk(url, "upload", bodies, 1, 1.0, script, seed=98)  # warm-up: loads the model
            out["upload"] = {str(c): run_wrk(url, "upload", bodies, c, seconds, script,
                                             seed=c) for c in UPLOAD_CONNECTIONS}
            out["server_rss_mib_end"] = _rss_mib(pid)
    out["rounds"] = rounds
    out["library_1_thread_s"] = round(float(np.mean(library[1])), 1)
    out["library_2_threads_s"] = round(float(np.mean(library[2])), 1)
    out["ids"] = {str(c): _combined(runs[c]) for c in CONNECTIONS}
    best = max(out["library_1_thread_s"], out["library_2_threads_s"])
    top = out["ids"][str(CONNECTIONS[-1])]
    out["serve_vs_library_16"] = round(top["requests_s"] / best, 3)
    out["serve_p99_ms_16"] = top["p99_ms"]
    best_upload = max(v["requests_s"] for v in out["upload"].values())
    out["upload_vs_model_batch_1"] = round(best_upload / out["model_batch_1_img_s"], 3)
    return out


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one load as one figure: mean rate, median of each percentile."""
    first = runs[0]
    out = {k: first[k] for k in ("connections", "threads")}
    out["requests"] = sum(r["requests"] for r in runs)
    out["requests_s"] = round(float(np.mean([r["requests_s"] for r in runs])), 1)
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"):
        out[key] = round(float(np.median([r[key] for r in runs])), 3)
    out["rounds"] = [{k: r[k] for k in ("requests_s", "p50_ms", "p99_ms")} for r in runs]
    return out


def _rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
    return round(int(line.split()[1]) / 1024, 1) if line else None


def main() -> None:
    """Run the benchmark and print its figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=FULL_SIZE, help="vectors in the corpus")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns of the library and the server at each load")
    args = parser.parse_args()
    print(json.dumps(measure(size=args.size, seconds=args.seconds, rounds=args.rounds),
                     indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
