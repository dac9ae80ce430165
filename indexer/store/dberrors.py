"""Database errors and URLs as they may be shown: secrets masked, one line, what to do."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError, disk_full, one_line
from indexer.redact import is_secret_name, mask_url, scrub, url_secrets

__all__ = ["first_line", "safe_url", "server_connect", "store_error", "url_secret_values"]

_SQLITE_FIX = ("make it writable, or set THUMBSEARCH_HOME (or THUMBSEARCH_DATABASE_URL) to a "
               "writable place (nothing stored was changed)")
# SQLite's words for a database file or directory it cannot write.
_SQLITE_UNUSABLE = ("unable to open database file", "attempt to write a readonly database",
                    "readonly database")


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


def first_line(exc: BaseException, secrets: set[str]) -> str:
    # A driver's message may repeat the connection string, or a value of it alone.
    return scrub(one_line(exc).strip(), secrets)


def server_connect(url: URL) -> Any:
    """A ``do_connect`` hook: a server that cannot be reached is one StoreError line."""
    shown = safe_url(url)
    secrets = url_secret_values(url)

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            raise StoreError(f"cannot connect to the database at {shown}: "
                             f"{first_line(exc, secrets)}") from exc

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
                      f"{first_line(exc, url_secret_values(engine.url))}")
