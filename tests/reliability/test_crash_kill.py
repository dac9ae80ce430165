"""SIGKILL during an ingest, then a restart: nothing lost, duplicated or orphaned.

The writer is a separate process, killed with SIGKILL at moments chosen by watching it
from outside and started again, until every phase has been hit several times:

- download: the fake thumbnail host stalls every request; the kill lands while one is
  being answered;
- embedding: the embedder holds a marker file while it embeds a batch;
- commit: the child holds SQLite's WAL write lock (byte 120 of the ``-shm`` file, read
  from ``/proc/locks``) right after a batch was embedded: the transaction storing it;
- index save: tail records appended past what the index metadata counts, or a new
  ``*.tmp`` file (an atomic write in progress) in the index directory.

Each moment is confirmed with the child stopped (SIGSTOP) before the SIGKILL, and which
batch or how far into a stall is drawn from a seeded generator. Every cycle adds new
videos to the query (newest first), so each run has fresh work and the killed runs'
leftovers. Loading the TensorFlow model takes seconds in every process, so the main test
runs ``python -m tests.fakes.ingest_child``: TinyEmbedder (slowed to stand in for the
model) and the library function ``thumbsearch ingest`` calls. A second test kills the real
``thumbsearch ingest`` (real model) twice. Afterwards ``indexer.doctor`` finds nothing
wrong, the index holds exactly the database's vector row ids, every video has its vector
and every stored vector finds itself. Torn or lost snapshots (power loss) are in
test_doctor.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.doctor import check_corpus
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.vectors.index import tail_record
from search.cli import app
from tests.fakes.corpus import bulk_catalogue, record_figure, seed_corpus, video_id
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.ingest_child import EMBEDDING_MARKER
from tests.fakes.youtube import FakeVideo, FakeYouTube

pytestmark = [pytest.mark.soak, pytest.mark.kill]

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("download", "embedding", "commit", "index save")
MIN_PER_PHASE = 5
MIN_KILLS = 20
MAX_CYCLES = 40  # runs before the last two, kills and misses together
END_ATTEMPTS = 6  # runs to get the last kill, in an index save
FIRST_VIDEOS = 40
NEW_PER_CYCLE = 8  # every video stays within the 10 pages of 50 a run reads
SEEDED = 500  # vectors stored before the first run
BATCH = 8
EMBED_SECONDS = 0.2  # a batch of the slowed embedder
STALL = 3.0  # seconds each thumbnail request stalls in a download cycle
CYCLE_DEADLINE = 60.0  # seconds: a run that neither reaches its moment nor ends is hung
WAL_WRITE_LOCK = 120  # SQLite's WAL write lock: this byte of the -shm file, locked to write
QUERY = "bulk"
MODEL = "tiny-test"  # TinyEmbedder's model id: its index files are named after it
REAL_VIDEOS = 50  # one page: its first write after the downloads begin stores a batch
REAL_DEADLINE = 240.0  # seconds for a run of the real command (it loads TensorFlow)

runner = CliRunner()


def _holds_write_lock(pid: int, shm: Path) -> bool:
    """Whether ``pid`` holds SQLite's WAL write lock on ``shm`` (it is in a write transaction)."""
    try:
        inode = shm.stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        # "3: POSIX  ADVISORY  WRITE 12345 fe:00:2515199 120 120"; "->" lines are waiters.
        fields = line.split()
        if len(fields) < 8 or fields[1] == "->" or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue
        if fields[4] != str(pid) or fields[5].rsplit(":", 1)[-1] != str(inode):
            continue
        end = fields[7]
        if int(fields[6]) <= WAL_WRITE_LOCK and (end == "EOF" or int(end) >= WAL_WRITE_LOCK):
            return True
    return False


def _temporaries(directory: Path) -> set[str]:
    """Names of the ``*.tmp`` files in ``directory`` (atomic writes in progress or left)."""
    try:
        return {name for name in os.listdir(directory) if name.endswith(".tmp")}
    except FileNotFoundError:
        return set()


class _Child:
    """One run of the ingest child, watched from outside."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path,
                 deadline: float) -> None:
        self.log = log
        self.deadline = deadline
        with log.open("w") as out:
            self.process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out,
                                            stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        if time.monotonic() - self.started > self.deadline:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the ingest hung for {self.deadline}s: {self.log.read_text()}")
        return self.process.poll() is None

    def kill_if(self, confirm: Callable[[], bool]) -> bool:
        """Stop the child; SIGKILL it when ``confirm()`` holds while it is stopped."""
        os.kill(self.pid, signal.SIGSTOP)
        if self.process.poll() is None and confirm():
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            return True
        os.kill(self.pid, signal.SIGCONT)
        return False

    def finish(self) -> int:
        """Wait for the end of a run that was not killed; its exit code."""
        while self.running():
            time.sleep(0.05)
        return int(self.process.returncode)


class _Scene:
    """The fake servers, the data directory and the seeded choices of one test."""

    def __init__(self, fake: FakeYouTube, home: Path, logs: Path, seed: int) -> None:
        self.fake = fake
        self.home = home
        self.logs = logs
        self.rng = np.random.default_rng(seed)
        self.index_dir = Settings.from_env().index_dir
        self.shm = home / "thumbsearch.sqlite3-shm"
        self.phase_dir = logs / "phase"
        self.phase_dir.mkdir()
        self.env = {**os.environ, "YOUTUBE_API_KEY": fake.api_key,
                    "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
                    "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
                    "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host,
                    "THUMBSEARCH_SEARCH_QUOTA": "100000"}
        self.runs = 0
        self.added = 0

    def add_videos(self, count: int) -> None:
        """New uploads: found first by the query (newest first)."""
        for n in range(self.added, self.added + count):
            video = FakeVideo(video_id=video_id(n, "b"), title=f"{QUERY} video {n}")
            self.fake.put(video)
            self.fake.searches[QUERY].insert(0, video.video_id)
        self.added += count

    def start(self, argv: list[str] | None = None, deadline: float = CYCLE_DEADLINE) -> _Child:
        self.runs += 1
        argv = argv or [sys.executable, "-m", "tests.fakes.ingest_child", QUERY,
                        "--pages", "10", "--per-page", "50", "--batch-size", str(BATCH),
                        "--embed-seconds", str(EMBED_SECONDS),
                        "--phase-dir", str(self.phase_dir)]
        return _Child(argv, self.env, self.logs / f"run-{self.runs}.log", deadline)

    def thumbnail_requests(self) -> int:
        return sum(self.fake.thumbnail_requests.values())

    def marker(self) -> bool:
        return (self.phase_dir / EMBEDDING_MARKER).exists()

    # -- one moment of each phase; True when the child was killed there ----------

    def kill_in_download(self, child: _Child) -> bool:
        before = self.thumbnail_requests()
        while child.running():
            if self.thumbnail_requests() > before:
                first = time.monotonic()  # this request and any after it stall STALL seconds
                time.sleep(float(self.rng.uniform(0.05, STALL / 2)))
                return child.kill_if(lambda: time.monotonic() - first < STALL - 0.2)  # noqa: B023
            time.sleep(0.002)
        return False

    def kill_in_embedding(self, child: _Child) -> bool:
        batch = int(self.rng.integers(1, 3))  # the first or second batch of the run
        seen, inside = 0, False
        while child.running():
            now = self.marker()
            if now and not inside:
                seen += 1
                if seen == batch:
                    time.sleep(float(self.rng.uniform(0.0, EMBED_SECONDS / 2)))
                    return child.kill_if(self.marker)
            inside = now
            time.sleep(0.002)
        return False

    def kill_in_commit(self, child: _Child) -> bool:
        batch = int(self.rng.integers(1, 3))
        seen, inside = 0, False
        while child.running():
            now = self.marker()
            if inside and not now:  # a batch was embedded: storing it comes next
                seen += 1
                if seen == batch:
                    return self._kill_on(child, lambda: _holds_write_lock(child.pid, self.shm),
                                         seconds=EMBED_SECONDS)
            inside = now
            time.sleep(0.001)
        return False

    def _unacknowledged_tail(self) -> bool:
        """Tail records appended past what the metadata (written last) counts as valid."""
        try:
            meta = json.loads((self.index_dir / f"{MODEL}.json").read_text())
            length = (self.index_dir / f"{MODEL}.tail").stat().st_size
        except (FileNotFoundError, ValueError):
            return False
        return length > int(meta.get("tail_size", 0)) * tail_record(int(meta["dim"])).itemsize

    def kill_in_save(self, child: _Child, moment: str | None = None) -> bool:
        """Kill while a save writes: its tail records appended but not yet counted by the
        metadata (``tail``), or the metadata's temporary file written but not renamed
        (``meta``; a compaction writes the snapshot's first)."""
        moment = moment or ("tail", "meta")[int(self.rng.integers(0, 2))]
        old = _temporaries(self.index_dir)

        def writing() -> bool:
            if moment == "tail":
                return self._unacknowledged_tail()
            return bool(_temporaries(self.index_dir) - old)

        calls = self.fake.videos_calls
        while child.running():
            if self.fake.videos_calls > calls:  # details of the new videos come just before
                return self._kill_on(child, writing, seconds=5.0)
            time.sleep(0.002)
        return False

    def _kill_on(self, child: _Child, seen: Callable[[], bool], seconds: float) -> bool:
        """Poll without sleeping for up to ``seconds``; kill when ``seen()`` holds."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and child.process.poll() is None:
            if seen() and child.kill_if(seen):
                return True
        return False

    def kill(self, phase: str, child: _Child) -> bool:
        return {"download": self.kill_in_download, "embedding": self.kill_in_embedding,
                "commit": self.kill_in_commit, "index save": self.kill_in_save}[phase](child)


@contextmanager
def _scene(home: Path, logs: Path, seed: int, first: int) -> Iterator[_Scene]:
    videos, searches = bulk_catalogue(0, QUERY)
    with FakeYouTube(videos, searches, search_quota=100_000) as fake:
        scene = _Scene(fake, home, logs, seed)
        scene.add_videos(first)
        yield scene


def _assert_consistent(service: Service, catalogue: list[str], seeded: int) -> dict[str, int]:
    """The doctor's verdict and the same invariants checked directly; the counts."""
    report = check_corpus(service, sample=100_000)
    assert report.ok, report.problems
    model = service.spec.model_id
    counts = service.store.counts(model)
    assert counts["videos"] == counts["vectors"] == len(catalogue) + seeded, counts
    assert not service.store.videos_without_vector(model)
    assert service.store.embedded_ids(catalogue, model) == set(catalogue)
    index = service.index()
    held = index.ids()
    assert len(np.unique(held)) == len(held), "an id is in the index twice"
    stored_ids, stored = [], []
    for ids, vectors in service.store.iter_vectors(model):
        stored_ids.append(ids)
        stored.append(vectors)
    db_ids = np.concatenate(stored_ids)
    assert sorted(held.tolist()) == sorted(db_ids.tolist())
    scores, found = index.search(np.concatenate(stored), 10)
    # Equal thumbnails give equal vectors: a row finds itself among the best-scored ones.
    best = scores[:, :1] - 1e-4
    hits = ((found == db_ids[:, None]) & (scores >= best)).any(axis=1)
    assert hits.all(), f"{int((~hits).sum())} stored vectors do not find themselves"
    return counts


def test_sigkill_at_every_phase_of_an_ingest_loses_nothing(isolated_env: Path,
                                                           tmp_path: Path) -> None:
    seeding = build_service(Settings.from_env(), embedder=TinyEmbedder())
    seed_corpus(seeding, SEEDED)
    seeding.close()
    kills: Counter[str] = Counter()
    misses = 0
    with _scene(isolated_env, tmp_path, seed=20260, first=FIRST_VIDEOS) as scene:
        order = list(PHASES)
        for cycle in range(MAX_CYCLES):
            if min(kills[p] for p in PHASES) >= MIN_PER_PHASE and kills.total() >= MIN_KILLS:
                break
            if cycle:
                scene.add_videos(NEW_PER_CYCLE)
            phase = min(order, key=lambda p: kills[p])
            order.append(order.pop(order.index(phase)))  # ties: round robin
            if phase == "download":
                scene.fake.inject("/vi/", delay=STALL, times=None)
            child = scene.start()
            try:
                killed = scene.kill(phase, child)
            finally:
                scene.fake.clear_injections()
            if killed:
                kills[phase] += 1
            else:
                assert child.finish() == 0, child.log.read_text()
                misses += 1
            # What readers see after every kill: exactly the database's vectors.
            with build_service(Settings.from_env(), embedder=TinyEmbedder()) as reader:
                held = reader.index().ids()
                assert len(np.unique(held)) == len(held)
                db = [int(i) for ids, _ in reader.store.iter_vectors("tiny-test") for i in ids]
                assert sorted(held.tolist()) == sorted(db)
        # The last run with new work dies in its index save; the next one has nothing new.
        for _ in range(END_ATTEMPTS):
            scene.add_videos(NEW_PER_CYCLE)
            child = scene.start()
            if scene.kill_in_save(child, "tail"):  # records written, not yet counted
                kills["index save"] += 1
                break
            assert child.finish() == 0, child.log.read_text()
            misses += 1
        else:
            pytest.fail(f"no kill in an index save in {END_ATTEMPTS} runs")
        final = scene.start()
        code = final.finish()
        assert code == 0, final.log.read_text()
        summary = json.loads(final.log.read_text().strip().splitlines()[-1])
        assert summary["failed"] == [] and summary["new"] == 0, summary
        catalogue = list(scene.fake.searches[QUERY])
    assert min(kills[p] for p in PHASES) >= MIN_PER_PHASE, kills
    assert kills.total() >= MIN_KILLS, kills
    with build_service(Settings.from_env(), embedder=TinyEmbedder()) as service:
        counts = _assert_consistent(service, catalogue, SEEDED)
    assert not _temporaries(service.settings.index_dir), "temporary files left behind"
    record_figure("sigkill_restarts", {
        "kills": kills.total(), "by_phase": dict(kills), "runs_not_killed": misses,
        "videos": len(catalogue), "vectors": counts["vectors"]})


@pytest.mark.slow
def test_the_real_ingest_command_killed_twice_then_finishes(isolated_env: Path,
                                                           tmp_path: Path) -> None:
    """`thumbsearch ingest` itself, real model: killed in a download, then storing a batch."""
    kills: Counter[str] = Counter()
    with _scene(isolated_env, tmp_path, seed=5, first=REAL_VIDEOS) as scene:
        exe = Path(sys.executable).with_name("thumbsearch")
        argv = [str(exe), "ingest", QUERY, "--per-page", str(REAL_VIDEOS), "--json"]
        scene.fake.inject("/vi/", delay=STALL, times=None)
        child = scene.start(argv, REAL_DEADLINE)
        try:
            kills["download"] += scene.kill_in_download(child)
        finally:
            scene.fake.clear_injections()
        # The model loads once downloads begin; the first write after that stores a batch.
        child = scene.start(argv, REAL_DEADLINE)
        before = scene.thumbnail_requests()
        while child.running() and scene.thumbnail_requests() == before:
            time.sleep(0.01)
        kills["commit"] += scene._kill_on(
            child, lambda: _holds_write_lock(child.pid, scene.shm), seconds=REAL_DEADLINE)
        assert kills == {"download": 1, "commit": 1}, (kills, child.log.read_text())
        final = scene.start(argv, REAL_DEADLINE)
        assert final.finish() == 0, final.log.read_text()
    result = runner.invoke(app, ["doctor", "--json", "--sample", "1000"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["problems"] == [], report
    assert report["videos"] == report["vectors"] == report["index_size"] == REAL_VIDEOS
    assert report["sampled"] == REAL_VIDEOS
    record_figure("sigkill_restarts_real_cli", {"kills": kills.total(), "by_phase": dict(kills),
                                                "videos": REAL_VIDEOS})
