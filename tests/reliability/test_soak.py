"""Soak: 10,000 videos ingested while 10,000 lookups run, against the loopback fakes.

The ingest is a process of its own (``python -m tests.fakes.ingest_child``: TinyEmbedder
and the library function ``thumbsearch ingest`` calls), reading 20 queries of 500 results
(10 pages of 50 each, 200 ``search.list`` calls: the day's quota is raised in the fake and
in the settings). At the same time ``python -m tests.fakes.lookup_child`` runs 10,000
``search.neighbours.similar_to_video`` lookups in LOOKUP_THREADS threads, each on a Service
of its own built again every REFRESH lookups (so it sees the new rows): ids of stored
videos, and ids of the catalogue, read from the database once stored and embedded from
their thumbnail before. The fakes stay in this process, so neither measured process holds
their request log. Memory is the resident set (``/proc/PID/statm``). The ingest's is
"flat" when it grows by no more than its index over the second half of its work; the
lookups' when, at the end, it exceeds by little that of a fresh process making a few
hundred lookups the same way on the final corpus (each thread's index holds the corpus).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.doctor import check_corpus
from indexer.service import build_service
from indexer.settings import Settings
from tests.fakes.corpus import bulk_catalogue, record_figure, seed_corpus
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.lookup_child import rss
from tests.fakes.youtube import FakeYouTube

pytestmark = pytest.mark.soak

ROOT = Path(__file__).resolve().parents[2]
VIDEOS = 10_000
QUERIES = 20  # of 500 results each: YouTube's cap for one query
LOOKUPS = 10_000
LOOKUP_THREADS = 4
REFRESH = 500  # lookups a thread makes before building its Service again
SEEDED = 1_000  # stored before the ingest starts, so lookups have something from the start
SAMPLE_EVERY = 0.2  # seconds between memory samples
DEADLINE = 600.0  # seconds: a bound on hangs, not a speed requirement
MB = 1024 * 1024
# Resident growth allowed over the second half. What legitimately grows in that half: the
# ingest's index by 5,000 vectors of 192 float32 and their ids (3.9 MB); each lookup
# thread's index by as much once its Service is built again (LOOKUP_THREADS x 3.9 MB). A
# leak of what an item or a lookup handles (a decoded 320x180 image is 170 KB; a Service
# with its engine and connections more) passes these bounds within a few hundred of them.
INGEST_GROWTH_BOUND = 24 * MB
# Once the ingest has ended, the lookup process goes on (a warm-up round, then
# STEADY_LOOKUPS measured) on a corpus that no longer grows: there its memory must stay
# flat. What the growing corpus left (each thread's index holds it; allocator arenas keep
# their peaks) is reported against a fresh process's FRESH_LOOKUPS on the final corpus.
STEADY_LOOKUPS = 2_000
STEADY_GROWTH_BOUND = 8 * MB
FRESH_LOOKUPS = 400


def test_ten_thousand_ingested_while_ten_thousand_lookups_run(isolated_env: Path,
                                                              tmp_path: Path) -> None:
    videos, searches = bulk_catalogue(VIDEOS, "soak", "s")
    ids = searches.pop("soak")
    per_query = VIDEOS // QUERIES
    queries = {f"soak {n}": ids[n * per_query:(n + 1) * per_query] for n in range(QUERIES)}
    seeding = build_service(Settings.from_env(), embedder=TinyEmbedder())
    seeded = seed_corpus(seeding, SEEDED)
    seeding.close()
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(seeded + ids))
    with FakeYouTube(videos, queries, search_quota=1_000) as fake:
        env = {**os.environ, "YOUTUBE_API_KEY": fake.api_key,
               "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
               "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
               "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host,
               "THUMBSEARCH_SEARCH_QUOTA": "1000"}
        watcher = build_service(Settings.from_env(), embedder=TinyEmbedder())
        start = time.monotonic()
        with (tmp_path / "ingest.log").open("w") as out:
            ingest = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.ingest_child", *queries, "--pages", "10",
                 "--per-page", "50"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        with (tmp_path / "lookups.log").open("w") as out:
            lookups = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.lookup_child", str(ids_file),
                 "--lookups", str(LOOKUPS), "--threads", str(LOOKUP_THREADS),
                 "--refresh", str(REFRESH), "--seed", "3",
                 "--steady-file", str(tmp_path / "ingest-ended"),
                 "--steady-lookups", str(STEADY_LOOKUPS)],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        samples: list[tuple[int, int]] = []  # (vectors stored by the ingest, its RSS)
        ended: dict[str, float] = {}
        try:
            while len(ended) < 2 and time.monotonic() - start < DEADLINE:
                stored = watcher.store.counts("tiny-test")["vectors"] - SEEDED
                samples.append((stored, rss(ingest.pid)))
                for name, process in (("ingest", ingest), ("lookups", lookups)):
                    if name not in ended and process.poll() is not None:
                        ended[name] = time.monotonic() - start
                        if name == "ingest":
                            (tmp_path / "ingest-ended").touch()
                time.sleep(SAMPLE_EVERY)
        finally:
            for process in (ingest, lookups):
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=60)
        ingest_log = (tmp_path / "ingest.log").read_text()
        lookup_log = (tmp_path / "lookups.log").read_text()
        assert ingest.returncode == 0, ingest_log
        assert lookups.returncode == 0, lookup_log
        try:
            report = check_corpus(watcher, sample=1_000)
        finally:
            watcher.close()
        fresh = subprocess.run(
            [sys.executable, "-m", "tests.fakes.lookup_child", str(ids_file),
             "--lookups", str(FRESH_LOOKUPS), "--threads", str(LOOKUP_THREADS),
             "--refresh", str(FRESH_LOOKUPS // LOOKUP_THREADS // 2), "--seed", "4"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    summary = json.loads(ingest_log.strip().splitlines()[-1])
    looked = json.loads(lookup_log.strip().splitlines()[-1])
    assert summary["new"] == VIDEOS and summary["failed"] == [], summary
    assert summary["api_calls"]["search"] == VIDEOS // 50
    assert report.ok, report.problems
    assert report.videos == report.vectors == report.index_size == VIDEOS + SEEDED
    assert looked["lookups"] == looked["ok"] == LOOKUPS and looked["error_count"] == 0, looked
    assert looked["ok_all"] and looked["steady"]["lookups"] == STEADY_LOOKUPS, looked
    # From the 5,000th stored video to the last: the final save's serialisation buffers
    # (a copy or two of the index, freed after it) come after that.
    second_half = [size for stored, size in samples if VIDEOS // 2 <= stored < VIDEOS and size]
    assert len(second_half) >= 5, samples  # the ingest's second half was sampled
    ingest_growth = max(second_half) - second_half[0]
    lookup_growth = looked["rss_after_half"] - looked["rss_half"]
    baseline = json.loads(fresh.stdout.strip().splitlines()[-1])["rss_after_half"]
    lookup_excess = looked["rss_after_half"] - baseline
    assert ingest_growth < INGEST_GROWTH_BOUND, f"the ingest grew {ingest_growth / MB:.1f} MB"
    steady_growth = looked["steady"]["peak"] - looked["steady"]["warm_peak"]
    assert steady_growth < STEADY_GROWTH_BOUND, (
        f"{STEADY_LOOKUPS} lookups on a corpus no longer growing raised the peak by "
        f"{steady_growth / MB:.1f} MB")
    record_figure("soak", {
        "videos": VIDEOS, "lookups": LOOKUPS, "lookup_threads": LOOKUP_THREADS,
        "ingest_seconds": round(ended["ingest"], 1), "lookup_seconds": round(ended["lookups"], 1),
        "ingest_rss_mb": round(max(second_half) / MB, 1),
        "ingest_growth_mb": round(ingest_growth / MB, 1),
        "lookup_rss_mb": round(looked["rss_after_half"] / MB, 1),
        "lookup_growth_mb": round(lookup_growth / MB, 1),
        "lookup_fresh_rss_mb": round(baseline / MB, 1),
        "lookup_excess_mb": round(lookup_excess / MB, 1),
        "steady_lookups": STEADY_LOOKUPS, "steady_growth_mb": round(steady_growth / MB, 1)})
