"""Several ingest workers at once against one database: each video embedded once, one budget.

The workers are real processes (``python -m tests.fakes.worker_child``: the library
functions `thumbsearch add-ids` and `thumbsearch ingest --queries-file` call, with the
tiny test embedder), started together against the same fake YouTube servers. Each one
is a host of its own (its own ``THUMBSEARCH_HOME`` and worker name) on PostgreSQL, or
several processes share one home. Afterwards every video is stored once, no thumbnail
was downloaded twice, the API calls stayed within the shared budget, both workers did
part of the work, no claim is left, and every home's index holds exactly the database's
rows. A worker SIGKILLed while it holds claims has them taken over once they expire.
The claim code itself is tested on SQLite, in process, with a clock of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from indexer.ingest.claims import Claims
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.schema import embeddings, work_claims
from indexer.store.watchlist import watch_matches_of
from indexer.youtube.quota import QuotaLedger
from tests.fakes.clock import Clock
from tests.fakes.corpus import video_id
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.ingest_child import EMBEDDING_MARKER
from tests.fakes.youtube import FakeVideo, FakeYouTube

ROOT = Path(__file__).resolve().parents[2]
MODEL = TinyEmbedder.model_id
DEADLINE = 300.0  # seconds a worker may take before the test calls it hung


@pytest.fixture
def fake() -> Iterator[FakeYouTube]:
    """400 cheap videos; four overlapping searches of 100 (the neighbours share 20)."""
    videos = [FakeVideo(video_id=video_id(i, "w"), title=f"worker video {i}")
              for i in range(400)]
    ids = [v.video_id for v in videos]
    searches = {f"q{n}": ids[n * 80:n * 80 + 100] for n in range(4)}
    with FakeYouTube(videos, searches) as server:
        yield server


def _database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend.startswith("postgres"):
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'shared' / 'thumbsearch.sqlite3'}"


def _homes(backend: str, tmp_path: Path) -> list[Path]:
    if backend.endswith("one home"):
        return [tmp_path / "shared", tmp_path / "shared"]
    return [tmp_path / "host-a", tmp_path / "host-b"]


def _env(fake: FakeYouTube, home: Path, url: str, name: str, *, lease: float = 60.0,
         search_quota: int = 100, units_quota: int = 10_000) -> dict[str, str]:
    return {**os.environ, "THUMBSEARCH_HOME": str(home), "THUMBSEARCH_DATABASE_URL": url,
            "YOUTUBE_API_KEY": fake.api_key,
            "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
            "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
            "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host,
            "THUMBSEARCH_SEARCH_QUOTA": str(search_quota),
            "THUMBSEARCH_UNITS_QUOTA": str(units_quota),
            "THUMBSEARCH_CLAIM_LEASE": str(lease), "THUMBSEARCH_WORKER_NAME": name}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.fakes.worker_child", *args],
                                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _finish(child: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    try:
        child.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail(f"a worker hung: {log.read_text()}")
    text = log.read_text()
    assert child.returncode in (0, 3), text
    summary: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return summary


def _stored(url: str) -> list[tuple[int, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [(int(r.id), str(r.video_id)) for r in conn.execute(
                select(embeddings.c.id, embeddings.c.video_id)
                .where(embeddings.c.model == MODEL))]
    finally:
        engine.dispose()


def _claims_left(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [str(r.owner) for r in conn.execute(select(work_claims.c.owner))]
    finally:
        engine.dispose()


def _index_ids(home: Path, url: str) -> list[int]:
    """The row ids a home's index holds once opened (snapshot, tail, replay)."""
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(home),
                                  "THUMBSEARCH_DATABASE_URL": url})
    with build_service(settings, embedder=TinyEmbedder()) as service:
        return sorted(int(i) for i in service.index().ids())


def _used(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        ledger = QuotaLedger(Store(engine), 0, 0)
        return {bucket: use.used for bucket, use in ledger.today().items()}
    finally:
        engine.dispose()


def _check_stored_once(url: str, homes: list[Path], expected: set[str]) -> None:
    rows = _stored(url)
    per_video = Counter(v for _, v in rows)
    assert set(per_video) == expected
    assert max(per_video.values()) == 1  # one vector row per video and model
    assert _claims_left(url) == []
    for home in dict.fromkeys(homes):
        assert _index_ids(home, url) == sorted(i for i, _ in rows), home


BACKENDS = [
    pytest.param("sqlite, one home", id="sqlite-one-home"),
    pytest.param("postgres, two homes", id="postgres-two-homes", marks=pytest.mark.postgres),
    pytest.param("postgres, one home", id="postgres-one-home", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_add_ids_workers_share_the_list_and_the_budget(
        backend: str, fake: FakeYouTube, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = _database(request, backend, tmp_path)
    homes = _homes(backend, tmp_path)
    ids = list(fake.videos)
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join(ids) + "\n")
    go = tmp_path / "go"
    units = 3  # three videos.list calls of 50 ids between both workers
    children = [
        _start(["--ids", str(listing), "--batch-size", "16", "--embed-seconds", "0.05",
                "--go", str(go)],
               _env(fake, home, url, f"host-{n}", units_quota=units),
               tmp_path / f"worker-{n}.log")
        for n, home in enumerate(homes)]
    go.touch()
    summaries = [_finish(child, tmp_path / f"worker-{n}.log")
                 for n, child in enumerate(children)]

    assert sum(s["new"] for s in summaries) == len(ids)
    assert all(s["new"] > 0 for s in summaries), summaries  # both did part of the work
    assert all(s["new"] + s["known"] == len(ids) for s in summaries), summaries
    requests = fake.thumbnail_requests
    assert set(requests) == set(ids) and max(requests.values()) == 1  # each fetched once
    assert fake.videos_calls <= units and fake.units_used <= units
    assert _used(url)["units"] <= units
    _check_stored_once(url, homes, set(ids))


@pytest.mark.postgres
def test_two_queries_file_workers_read_each_page_once_within_the_search_budget(
        fake: FakeYouTube, pg_url: str, tmp_path: Path) -> None:
    queries = tmp_path / "queries.toml"
    queries.write_text("".join(f'[[queries]]\nq = "q{n}"\npages = 2\n\n' for n in range(4)))
    go = tmp_path / "go"
    budget = 6  # of the 8 pages (4 queries x 2 pages of 50)
    homes = [tmp_path / "host-a", tmp_path / "host-b"]
    children = [
        _start(["--queries-file", str(queries), "--batch-size", "16",
                "--embed-seconds", "0.05", "--go", str(go)],
               _env(fake, home, pg_url, home.name, search_quota=budget),
               tmp_path / f"worker-{n}.log")
        for n, home in enumerate(homes)]
    go.touch()
    summaries = [_finish(child, tmp_path / f"worker-{n}.log")
                 for n, child in enumerate(children)]

    pages = Counter((r.param("q"), r.param("pageToken")) for r in fake.requests
                    if r.path == "/youtube/v3/search")
    assert sum(pages.values()) == fake.search_calls <= budget
    assert max(pages.values()) == 1, pages  # no page read twice
    assert _used(pg_url)["search"] <= budget
    assert all(s["pages"] > 0 for s in summaries), summaries  # both did part of the work
    rows = _stored(pg_url)
    assert sum(s["new"] for s in summaries) == len(rows)
    requests = fake.thumbnail_requests
    assert set(requests) == {v for _, v in rows} and max(requests.values()) == 1
    _check_stored_once(pg_url, homes, {v for _, v in rows})
    # Both workers together read every page the budget allowed; each video is linked.
    assert len(rows) >= 100


@pytest.mark.kill
@pytest.mark.postgres
def test_a_killed_workers_claims_are_taken_over_once_they_expire(
        fake: FakeYouTube, pg_url: str, tmp_path: Path) -> None:
    ids = list(fake.videos)[:240]
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join(ids) + "\n")
    go = tmp_path / "go"
    phase = tmp_path / "phase"
    phase.mkdir()
    homes = [tmp_path / "host-a", tmp_path / "host-b"]
    lease = 2.0
    victim = _start(["--ids", str(listing), "--no-details", "--batch-size", "8",
                     "--embed-seconds", "0.3", "--phase-dir", str(phase), "--go", str(go)],
                    _env(fake, homes[0], pg_url, "host-a", lease=lease),
                    tmp_path / "victim.log")
    survivor = _start(["--ids", str(listing), "--no-details", "--batch-size", "8",
                       "--embed-seconds", "0.1", "--go", str(go)],
                      _env(fake, homes[1], pg_url, "host-b", lease=lease),
                      tmp_path / "survivor.log")
    go.touch()
    try:
        deadline = time.monotonic() + DEADLINE
        while not (phase / EMBEDDING_MARKER).exists():  # it holds claims while it embeds
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()
            assert time.monotonic() < deadline, "the victim never embedded"
            time.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    held = [owner for owner in _claims_left(pg_url) if owner.startswith("host-a:")]
    assert held  # the killed worker's claims outlive it until they expire
    summary = _finish(survivor, tmp_path / "survivor.log")
    assert summary["new"] > 0 and summary["failed"] == []
    _check_stored_once(pg_url, homes, set(ids))


def test_claims_lease_renew_expire_and_release_on_sqlite(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 3, 2, 18, 0, tzinfo=UTC))  # as test_add_ids' clock
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        store = Store(engine, clock)
        store.upgrade()
        first, second = Claims(store, 30.0, "host-a"), Claims(store, 30.0, "host-b")
        assert first.claim(["video:m:a", "video:m:b"]) == {"video:m:a", "video:m:b"}
        assert first.claim(["video:m:a"]) == {"video:m:a"}  # its own: claimed again
        assert second.claim(["video:m:a", "video:m:c"]) == {"video:m:c"}
        assert second.others(["video:m:a", "video:m:b", "video:m:c", "video:m:d"]) == {
            "video:m:a": False, "video:m:b": False}
        clock.now += timedelta(seconds=20)
        first.renew()  # pushed to now + 30 s
        clock.now += timedelta(seconds=20)
        assert second.claim(["video:m:a"]) == set()  # renewed: still the first's
        clock.now += timedelta(seconds=11)
        assert second.others(["video:m:a"]) == {"video:m:a": True}
        assert second.claim(["video:m:a"]) == {"video:m:a"}  # expired: taken over
        assert first.others(["video:m:a"]) == {"video:m:a": False}
        first.release(["video:m:a", "video:m:b"])  # only its own rows go
        assert second.others(["video:m:a"]) == {}
        assert first.others(["video:m:a", "video:m:b"]) == {"video:m:a": False}
        assert second.held() == {"video:m:a", "video:m:c"}
        second.release_all()
        assert first.others(["video:m:a", "video:m:c"]) == {}
    finally:
        engine.dispose()


def test_a_dead_process_claims_on_the_same_host_are_taken_at_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        store = Store(engine)
        store.upgrade()
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        dead = Claims(store, 3600.0, "host-a")
        dead.owner = f"host-a:{int(gone.stdout)}:0000"
        assert dead.claim(["query:k"]) == {"query:k"}
        elsewhere = Claims(store, 3600.0, "host-b")
        assert elsewhere.claim(["query:k"]) == set()  # another host: wait for the lease
        here = Claims(store, 3600.0, "host-a")
        assert here.claim(["query:k"]) == {"query:k"}  # its process is gone
        with here:
            assert here.held() == {"query:k"}
        assert here.others(["query:k"]) == {} and here.held() == set()  # released on exit
    finally:
        engine.dispose()


def test_indexes_sharing_a_directory_save_without_losing_each_others_rows(
        tmp_path: Path) -> None:
    import numpy as np

    from indexer.records import VideoMeta
    from indexer.vectors.index import VectorIndex

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        store = Store(engine)
        store.upgrade()
        rng = np.random.default_rng(0)
        directory = tmp_path / "index"
        first, second = (VectorIndex.open(directory, "m", 8, store) for _ in range(2))

        def stored(index: VectorIndex, start: int, count: int) -> None:
            metas = [VideoMeta(video_id=video_id(start + i, "s"), source="youtube")
                     for i in range(count)]
            vectors = rng.normal(size=(count, 8)).astype(np.float32)
            index.add_stored(store.add_embedded(metas, vectors, "m"), vectors)

        stored(first, 0, 5)
        stored(second, 5, 5)  # after the first's rows: the second replays them
        assert sorted(second.ids()) == list(range(1, 11))
        stored(first, 10, 3)  # rows 6-10 came in between: replayed, not skipped
        assert sorted(first.ids()) == list(range(1, 14))
        first.save()
        stored(second, 13, 2)
        second.save()  # the first saved meanwhile: its files are taken, then extended
        first.save()  # nothing newer here: the second's files stay
        files = VectorIndex(directory, "m", 8, store)
        files._load(mmap=False)  # the files alone, no replay
        ids = files.ids()
        assert sorted(ids) == list(range(1, 16)) and files.watermark == 15
        assert len(set(ids.tolist())) == len(ids)
        for row in (1, 7, 15):
            assert np.allclose(files.vector(row), first.vector(row), atol=1e-6)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_workers_record_each_re_upload_of_a_watched_item_once(
        fake: FakeYouTube, pg_url: str, tmp_path: Path) -> None:
    from search.eval import samples
    from search.watch import add_to_watchlist

    photo = samples.youtube_thumbnail(samples.sample_photos()["chelsea"], "maxresdefault")
    original = FakeVideo(video_id=video_id(0, "o"), title="the original", frame=photo)
    small = photo.resize((640, 360))
    copies = [FakeVideo(video_id=video_id(n, "c"), title=f"copy {n}", frame=frame)
              for n, frame in enumerate([small, samples.jpeg_reencode(small, 30),
                                         samples.color_shift(small, brightness=1.05),
                                         samples.draw_duration_badge(small)])]
    fake.publish([original, *copies])
    homes = [tmp_path / "host-a", tmp_path / "host-b"]
    settings = Settings.from_env({**_env(fake, homes[0], pg_url, "host-a")})
    with build_service(settings, embedder=TinyEmbedder()) as service:
        # Its thumbnail, embedded; the 8x8 test embedder needs a stricter threshold than the
        # real model's default to tell the fake's other frames apart.
        [watched] = add_to_watchlist(service, [original.video_id], threshold=0.97)
    assert watched.matches == [] and watched.searched == 0
    others = [v for v in fake.videos if v not in {c.video_id for c in copies}]
    # Overlapping lists: every copy (and the original) in both.
    lists = [others[:300] + [c.video_id for c in copies], [c.video_id for c in copies]
             + others[100:]]
    go = tmp_path / "go"
    children = []
    for n, (home, ids) in enumerate(zip(homes, lists, strict=True)):
        listing = tmp_path / f"ids-{n}.txt"
        listing.write_text("\n".join(ids) + "\n")
        children.append(_start(["--ids", str(listing), "--no-details", "--batch-size", "8",
                                "--embed-seconds", "0.02", "--go", str(go)],
                               _env(fake, home, pg_url, home.name),
                               tmp_path / f"worker-{n}.log"))
    go.touch()
    summaries = [_finish(child, tmp_path / f"worker-{n}.log")
                 for n, child in enumerate(children)]

    assert all(s["new"] > 0 for s in summaries), summaries  # both did part of the work
    engine = make_engine(pg_url)
    try:
        matches = watch_matches_of(Store(engine))
    finally:
        engine.dispose()
    assert sorted(m.video_id for m in matches) == sorted(c.video_id for c in copies)
    runs = {s["run_id"] for s in summaries}
    assert len(runs) == 2 and {m.run_id for m in matches} <= runs
    assert sum(s["watch_matches"] for s in summaries) == len(matches)
    assert Counter(m.run_id for m in matches) == {
        s["run_id"]: s["watch_matches"] for s in summaries if s["watch_matches"]}
    _check_stored_once(pg_url, homes, set(fake.videos))
