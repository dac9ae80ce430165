"""Database engine creation and schema upgrades through Alembic.

SQLite (the default, a file in the data directory) and PostgreSQL (a
``postgresql+psycopg://`` URL, shared by several hosts) run the same code: only
connection settings differ here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError, disk_full, one_line
from indexer.redact import is_secret_name, mask_url, scrub, url_secrets
from indexer.writable import unusable_path

__all__ = [
    "alembic_config",
    "has_schema",
    "make_engine",
    "safe_url",
    "store_error",
    "upgrade_database",
    "url_secret_values",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_SQLITE_FIX = ("make it writable, or set THUMBSEARCH_HOME (or THUMBSEARCH_DATABASE_URL) to a "
               "writable place (nothing stored was changed)")
# SQLite's words for a database file or directory it cannot write.
_SQLITE_UNUSABLE = ("unable to open database file", "attempt to write a readonly database",
                    "readonly database")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets queries read while an ingest writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def safe_url(url: str | URL) -> str:
    """The URL as text with its password and secret query parameters masked (for messages)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (SQLAlchemyError, ValueError):
        return mask_url(str(url))
    return mask_url(parsed.render_as_string(hide_password=True))


def url_secret_values(url: str | URL) -> set[str]:
    """Every secret ``url`` carries (its password, secret query values), to scrub from text."""
    if isinstance(url, str):
        try:
            parsed = make_url(url)
        except (SQLAlchemyError, ValueError):
            return url_secrets(url)
    else:
        parsed = url
    values = url_secrets(parsed.render_as_string(hide_password=False))
    if parsed.password:
        values.add(str(parsed.password))
    for name, value in parsed.query.items():
        if is_secret_name(name):
            values.update([value] if isinstance(value, str) else value)
    return values


def _first_line(exc: BaseException, secrets: set[str]) -> str:
    # A driver's message may repeat the connection string, or a value of it alone.
    return scrub(one_line(exc).strip(), secrets)


def _server_connect(url: URL) -> Any:
    """A ``do_connect`` hook: a server that cannot be reached is one StoreError line."""
    shown = safe_url(url)
    secrets = url_secret_values(url)

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            raise StoreError(f"cannot connect to the database at {shown}: "
                             f"{_first_line(exc, secrets)}") from exc

    return connect


def store_error(exc: SQLAlchemyError, what: str, engine: Engine) -> StoreError:
    """The StoreError for a database error while ``what``: disk full (SQLite), else one line."""
    if engine.dialect.name == "sqlite":
        full = disk_full(exc, what, engine.url.database or safe_url(engine.url))
        if full is not None:
            return full
        text = one_line(exc).lower()
        if any(phrase in text for phrase in _SQLITE_UNUSABLE):
            # SQLite says neither which file nor why: name the file and what to check.
            return StoreError(f"cannot open or write the database {engine.url.database} while "
                              f"{what}: "
                              "its directory or file is read-only, immutable or missing; "
                              f"{_SQLITE_FIX}")
    return StoreError(f"database error while {what}: "
                      f"{_first_line(exc, url_secret_values(engine.url))}")


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
            event.listen(engine, "do_connect", _server_connect(parsed))
            return engine
        engine = create_engine(parsed)
    except (SQLAlchemyError, ValueError, OSError, ImportError) as exc:
        full = disk_full(exc, "creating the database directory", safe_url(url))
        if full is not None:
            raise full from exc
        raise StoreError(f"cannot open database {safe_url(url)}: "
                         f"{_first_line(exc, url_secret_values(url))}") from exc
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

    from indexer.lock import serialise_schema_upgrade

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
