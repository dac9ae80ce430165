"""Transaction locks: embedding rows commit in row-id order (the index's replay relies on
it), schema upgrades run one at a time; inserts that two workers may make at once."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["INSERT_KEY", "SCHEMA_KEY", "advisory_key", "insert_new", "serialise_embedding_inserts",
           "serialise_schema_upgrade"]


def advisory_key(name: bytes) -> int:
    """A PostgreSQL advisory lock's bigint key, the same for every thumbsearch process."""
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


# The transaction-scoped advisory lock's key around inserts of embedding rows.
INSERT_KEY = advisory_key(b"thumbsearch embedding inserts")
# The same for schema upgrades: workers starting together must not create tables twice.
SCHEMA_KEY = advisory_key(b"thumbsearch schema upgrade")


def serialise_embedding_inserts(conn: Any) -> None:
    """Start the caller's transaction by taking the lock that orders embedding inserts.

    Call it first in a transaction that inserts embedding rows: PostgreSQL waits for
    ``pg_advisory_xact_lock``, released at commit or rollback; SQLite takes the write
    lock now (``BEGIN IMMEDIATE``, waiting up to the busy timeout) instead of at its
    first write, so what the transaction reads before writing cannot change under it.
    """
    _serialise(conn, INSERT_KEY)


def serialise_schema_upgrade(conn: Any) -> None:
    """Start a schema upgrade's transaction by waiting for any other one to commit.

    Then the upgrade sees the revision the other one reached (PostgreSQL and SQLite
    both create tables inside the transaction).
    """
    _serialise(conn, SCHEMA_KEY)


def _serialise(conn: Any, key: int) -> None:
    from sqlalchemy import func, select

    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(key)))
    elif dialect == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")  # a constant: the write lock, taken now


def insert_new(conn: Any, table: Any, key: list[str]) -> Any:
    """An INSERT into ``table`` that skips rows whose ``key`` columns are stored already
    (``ON CONFLICT DO NOTHING``), so two workers adding the same row both succeed."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
