"""An ingest run on its own: recorded with its status and summary, index saved, heartbeat.

Local image files stand in for downloads and TinyEmbedder for the model.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from indexer.errors import QuotaExceededError, StoreError
from indexer.ingest.pipeline import WorkItem
from indexer.ingest.run import ingest_run, run_heartbeat
from indexer.records import VideoMeta
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.history import list_runs
from indexer.store.metadata import Store
from tests.fakes.corpus import video_id
from tests.fakes.embedder import TinyEmbedder


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    service = build_service(settings, embedder=TinyEmbedder())
    try:
        yield service
    finally:
        service.close()


def _items(folder: Path, count: int, start: int = 0) -> list[WorkItem]:
    folder.mkdir(exist_ok=True)
    items = []
    for n in range(start, start + count):
        path = folder / f"{n}.png"
        out = io.BytesIO()
        Image.new("RGB", (16, 9), (n * 20 % 256, 90, 200)).save(out, "PNG")
        path.write_bytes(out.getvalue())
        items.append(WorkItem(VideoMeta(video_id=video_id(n), source="file"), path=path))
    return items


def _last_run(service: Service) -> tuple[str, dict[str, Any]]:
    run = list_runs(service.store, 1, home=service.settings.home)[-1]
    return run.status, run.summary


def test_a_run_stores_counts_records_and_saves_the_index(service: Service,
                                                          tmp_path: Path) -> None:
    items = _items(tmp_path / "images", 5)
    items.append(WorkItem(VideoMeta(video_id=video_id(99), source="file"),
                          path=tmp_path / "missing.png"))
    with ingest_run(service, "files") as run:
        finished = run.submit(items, "folder") + run.drain()
        assert list_runs(service.store, 1, home=service.settings.home)[-1].status == "running"
        assert run.drain() == []  # each finished group is handed back once
    assert [f.tag for f in finished] == ["folder"]
    result = finished[0].result
    assert result.stored == [item.meta.video_id for item in items[:5]]
    assert [f.video_id for f in result.failed] == [video_id(99)]
    status, _ = _last_run(service)
    assert status == "done"
    assert service.store.counts("tiny-test")["vectors"] == 5
    reopened = build_service(service.settings, embedder=TinyEmbedder())
    try:
        assert reopened.index().size == 5  # saved at the end of the run
    finally:
        reopened.close()


def test_a_quota_stop_keeps_what_was_fetched_and_records_the_stop(service: Service,
                                                                    tmp_path: Path) -> None:
    items = _items(tmp_path / "images", 3)
    with ingest_run(service, "search") as run:
        run.submit(items, "page")
        raise QuotaExceededError("the search quota is spent until 09:00")
    assert run.summary.stopped == "the search quota is spent until 09:00"
    assert service.store.counts("tiny-test")["vectors"] == 3  # stored before the stop
    status, summary = _last_run(service)
    assert status == "quota" and summary["stopped"] == run.summary.stopped


def test_any_other_error_is_raised_and_the_run_recorded_failed(service: Service) -> None:
    with pytest.raises(RuntimeError, match="boom"), ingest_run(service, "files"):
        raise RuntimeError("boom")
    assert _last_run(service)[0] == "failed"


def test_vectors_embedded_elsewhere_are_written_rows_then_index(service: Service) -> None:
    metas = [VideoMeta(video_id=video_id(n), source="test") for n in range(4)]
    vectors = np.eye(4, 192, dtype=np.float32)
    with ingest_run(service, "files") as run:
        run.write(metas, vectors)
        assert run.index is not None and run.index.size == 4
    assert service.store.counts("tiny-test")["vectors"] == 4
    assert _last_run(service)[0] == "done"


def test_the_heartbeat_beats_until_the_run_ends_and_outlives_an_outage() -> None:
    class Beats:
        def __init__(self) -> None:
            self.calls = 0
            self.twice = threading.Event()

        def heartbeat_run(self, run_id: int) -> None:
            assert run_id == 7
            self.calls += 1
            if self.calls >= 2:
                self.twice.set()
            if self.calls == 1:
                raise StoreError("the database is restarting")

    beats = Beats()
    with run_heartbeat(cast(Store, beats), 7, every=0.01):
        assert beats.twice.wait(10)  # the first beat failed, the next came anyway
    # The beating thread has ended with the run.
    assert "run-heartbeat" not in {thread.name for thread in threading.enumerate()}
