"""A new SQLite file turns to WAL even while another worker holds its write lock."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from indexer.store.db import make_engine


def test_wal_switch_waits_for_a_writer_of_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")  # still in the rollback-journal mode of a new file
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    released = threading.Event()

    def release() -> None:
        other.execute("COMMIT")
        released.set()

    # SQLite answers this switch "database is locked" at once, busy timeout or not.
    timer = threading.Timer(0.3, release)
    timer.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar()
            rows = connection.execute(text("SELECT count(*) FROM t")).scalar()
    finally:
        timer.join()
        engine.dispose()
        other.close()
    assert released.is_set()
    assert mode == "wal"
    assert rows == 1
