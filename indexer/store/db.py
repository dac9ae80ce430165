"""Database engine creation and schema upgrades through Alembic, for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError, disk_full
from indexer.store.dberrors import (
    first_line,
    safe_url,
    server_connect,
    store_error,
    url_secret_values,
)
from indexer.writable import unusable_path

__all__ = [
    "alembic_config",
    "has_schema",
    "make_engine",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets queries read while an ingest writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # _BUSY_SECONDS
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_BUSY_SECONDS = 30.0  # the busy_timeout PRAGMA above


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _switch_to_wal(cursor: Any) -> None:
    """Turn a new database file to WAL mode (the mode stays with the file).

    SQLite answers "database is locked" at once, without its busy timeout, when another
    connection (another worker creating the same file) holds a lock at that moment: the
    switch is tried again for up to the busy timeout.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

    for attempt in Retrying(retry=retry_if_exception(_locked),
                            stop=stop_after_delay(_BUSY_SECONDS),
                            wait=wait_random(0.005, 0.05), reraise=True):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite files get their directory, WAL mode and foreign keys.

    A PostgreSQL engine checks pooled connections before use, works in UTC and turns a
    server it cannot reach into one StoreError line (password masked). Its driver is
    imported only here, when such a URL is used.
    """
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            # The data directory is private to its user: it holds the database.
            folder = Path(parsed.database or "").parent
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:  # a setting to fix: a schedule must not retry it
                raise unusable_path(exc, "the database's directory", folder,
                                    "make it writable, or set THUMBSEARCH_HOME (or "
                                    "THUMBSEARCH_DATABASE_URL) to a writable place") from exc
        if backend == "postgresql":
            connect_args: dict[str, Any] = {"application_name": "thumbsearch"}
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = 10
            if "options" not in parsed.query:
                connect_args["options"] = "-c timezone=UTC"
            engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5,
                                   pool_recycle=1800, connect_args=connect_args)
            event.listen(engine, "do_connect", server_connect(parsed))
            return engine
        engine = create_engine(parsed)
    except (SQLAlchemyError, ValueError, OSError, ImportError) as exc:
        full = disk_full(exc, "creating the database directory", safe_url(url))
        if full is not None:
            raise full from exc
        raise StoreError(f"cannot open database {safe_url(url)}: "
                         f"{first_line(exc, url_secret_values(url))}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(url: str | None = None) -> Any:
    """Alembic config pointing at this project's migrations directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to Alembic's head revision (a no-op when it is there)."""
    from alembic import command

    from indexer.store.serialise import serialise_schema_upgrade

    try:
        with engine.begin() as connection:
            serialise_schema_upgrade(connection)  # workers starting together take turns
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise store_error(exc, "upgrading the database schema", engine) from exc


def has_schema(engine: Engine) -> bool:
    """True when the database has been created (its tables exist)."""
    try:
        return inspect(engine).has_table("videos")
    except SQLAlchemyError as exc:
        raise store_error(exc, "reading the database", engine) from exc
