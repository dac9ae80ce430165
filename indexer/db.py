"""Database engine creation and schema upgrades through Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError, disk_full

__all__ = ["alembic_config", "has_schema", "make_engine", "upgrade_database"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets queries read while an ingest writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite files get their directory, WAL mode and foreign keys."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            # The data directory is private to its user: it holds the database.
            Path(parsed.database or "").parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError, OSError) as exc:
        full = disk_full(exc, "creating the database directory", url)
        if full is not None:
            raise full from exc
        raise StoreError(f"cannot open database {url!r}: {exc}") from exc
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

    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        full = disk_full(exc, "upgrading the database schema", engine.url.database or engine.url)
        if full is not None:
            raise full from exc
        raise StoreError(f"cannot upgrade the database schema: {exc}") from exc


def has_schema(engine: Engine) -> bool:
    """True when the database has been created (its tables exist)."""
    try:
        return inspect(engine).has_table("videos")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {exc}") from exc
