"""Run history read back: order and limit, the JSON of one run, ended runs as recorded.

How a ``running`` row is judged (process, heartbeat, writer lock) is in
tests/reliability/test_interrupted_runs.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from indexer.store.db import make_engine
from indexer.store.history import RunRecord, list_runs
from indexer.store.metadata import Store
from tests.fakes.clock import Clock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _store(tmp_path: Path, clock: Clock) -> Store:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'runs.db'}"), clock)
    store.upgrade()
    return store


def test_no_database_is_no_runs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'absent.db'}")
    try:
        assert list_runs(Store(engine)) == []
    finally:
        engine.dispose()


def test_the_latest_runs_oldest_first_with_their_ends(tmp_path: Path) -> None:
    clock = Clock(START)
    store = _store(tmp_path, clock)
    try:
        for n, status in enumerate(["done", "quota", "failed", "done"]):
            clock.now = START + timedelta(hours=n)
            run_id = store.start_run("search")
            clock.now += timedelta(minutes=5)
            store.finish_run(run_id, status, {"new": n})
        runs = list_runs(store, limit=3, home=tmp_path)
        assert [r.status for r in runs] == ["quota", "failed", "done"]
        assert [r.summary["new"] for r in runs] == [1, 2, 3]
        assert [r.started_at for r in runs] == [START + timedelta(hours=n) for n in (1, 2, 3)]
        assert all(r.started_at.tzinfo is not None and r.finished_at is not None
                   and r.finished_at - r.started_at == timedelta(minutes=5) for r in runs)
    finally:
        store.engine.dispose()


def test_one_run_as_json_with_defaults_and_the_quota_of_older_summaries() -> None:
    old = RunRecord(id=3, kind="files", started_at=START, finished_at=None, status="running",
                    summary={"new": 2, "failed": [{"video_id": "x", "reason": "y"}],
                             "api_calls": {"search": 4, "videos": 5}})
    assert old.to_json() == {
        "id": 3, "kind": "files", "started_at": START.isoformat(), "finished_at": None,
        "status": "running", "queries": 0, "pages": 0, "new": 2, "known": 0, "failed": 1,
        "quota": {"search": 4, "units": 5}, "per_query": {}, "stopped": None,
        "enriched": 0, "refreshed": 0, "gone": 0, "pruned": 0, "watch_matches": None}
    new = RunRecord(id=4, kind="search", started_at=START, finished_at=START, status="done",
                    summary={"quota": {"search": 1, "units": 2}, "api_calls": {"search": 9}})
    assert new.to_json()["quota"] == {"search": 1, "units": 2}
    assert new.to_json()["finished_at"] == START.isoformat()
