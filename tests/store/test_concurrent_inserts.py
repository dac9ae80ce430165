"""Two workers recording the same query, or linking the same video to it, at the same moment:
both succeed and the row is stored once (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, func, insert, select

from indexer.records import VideoMeta
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.db import make_engine
from indexer.store.schema import queries, query_videos
from tests.fakes.embedder import TinyEmbedder


def _other_worker_first(engine: Any, table_name: str, row: dict[str, Any]) -> list[int]:
    """Before this engine's next INSERT into ``table_name``, another connection stores
    ``row`` and commits: the moment between a worker's check and its insert."""
    fired: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _race(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        prefix = f"INSERT INTO {table_name.upper()} "
        if not fired and statement.lstrip().upper().startswith(prefix):
            fired.append(1)
            other = make_engine(str(engine.url.render_as_string(hide_password=False)))
            try:
                with other.begin() as conn:
                    conn.execute(insert(queries if table_name == "queries" else query_videos),
                                 row)
            finally:
                other.dispose()

    return fired


@pytest.mark.usefixtures("backend")
def test_two_workers_record_the_same_query() -> None:
    settings = Settings.from_env()
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        store = service.store
        fired = _other_worker_first(store.engine, "queries",
                                    {"text": "cats", "created_at": datetime.now(UTC)})
        first = store.query_id("cats")
        assert fired == [1]
        assert store.query_id("cats") == first
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(queries)).scalar() == 1


@pytest.mark.usefixtures("backend")
def test_two_workers_link_the_same_video_to_a_query() -> None:
    settings = Settings.from_env()
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        store = service.store
        store.add_embedded([VideoMeta(video_id="dQw4w9WgXcQ", source="test", title="t",
                                      thumbnail_url="https://i.ytimg.com/vi/x/mqdefault.jpg")],
                           np.ones((1, 192), np.float32) / np.sqrt(192), "tiny-test")
        query = store.query_id("cats")
        fired = _other_worker_first(store.engine, "query_videos",
                                    {"query_id": query, "video_id": "dQw4w9WgXcQ",
                                     "first_seen_at": datetime.now(UTC), "rank": 1})
        store.link_query(query, [("dQw4w9WgXcQ", 1)])
        assert fired == [1]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(query_videos)).scalar() == 1
