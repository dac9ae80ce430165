"""The writer lock: shared for commands that only add, exclusive for those that rewrite
(a flock on the home's ``ingest.lock``, and a session advisory lock on PostgreSQL)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.errors import WriterBusyError, disk_full
from indexer.store.serialise import advisory_key
from indexer.writable import HOME_FIX, check_writable_dir, unusable_path

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["ADVISORY_KEY", "LOCK_NAME", "advisory_holder", "holder", "writer_lock"]

LOCK_NAME = "ingest.lock"


# The writer lock's key.
ADVISORY_KEY = advisory_key(b"thumbsearch writer")
_POLL = 0.2  # seconds between attempts while waiting
_APP_PREFIX = "thumbsearch writer "


def holder(path: Path) -> dict[str, Any]:
    """What the lock file says about its holder (empty when unknown)."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(what: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "what": what,
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}


def _busy(who: dict[str, Any], where: str, wait: float) -> WriterBusyError:
    waited = f" after waiting {wait:g}s" if wait > 0 else ""
    if not who:  # shared holders do not sign the file
        return WriterBusyError(f"ingest workers hold the lock {where}{waited}; this command "
                               "needs it alone: try again later or pass --wait SECONDS")
    text = (f"pid {who.get('pid', '?')}"
            + (f" on {who['host']}" if who.get("host") else "")
            + f", started {who.get('started', '?')}"
            + (f", {who['what']}" if who.get("what") else ""))
    return WriterBusyError(f"another ingest run ({text}) holds the lock {where}{waited}; "
                           "try again later or pass --wait SECONDS")


def _poll(what: Callable[[], bool], *, wait: float, sleep: Callable[[float], None],
          monotonic: Callable[[], float]) -> bool:
    """Try ``what`` until it returns True or ``wait`` seconds have passed."""
    deadline = monotonic() + max(0.0, wait)
    while True:
        if what():
            return True
        if monotonic() >= deadline:
            return False
        sleep(min(_POLL, max(0.0, deadline - monotonic())) or _POLL)


@contextmanager
def _file_lock(home: Path, what: str, wait: float, sleep: Callable[[float], None],
               monotonic: Callable[[], float], shared: bool = False) -> Iterator[Path]:
    check_writable_dir(home, "the data directory")  # private: it holds the database
    path = home / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unusable_path(exc, "the lock file", path,
                            f"remove what is in its way, or {HOME_FIX}") from exc
    try:
        def take() -> bool:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not _poll(take, wait=wait, sleep=sleep, monotonic=monotonic):
            raise _busy(holder(path), str(path), wait) from None
        if shared:  # several holders: none of them signs the file
            yield path
            return
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, json.dumps(_record(what)).encode(), 0)
        except OSError as exc:
            full = disk_full(exc, "writing the lock file", path)
            if full is None:
                raise
            raise full from exc
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the lock itself goes with the descriptor
    finally:
        os.close(fd)


def advisory_holder(conn: Any) -> dict[str, Any]:
    """Who holds the advisory writer lock (pid, host, session start); empty when nobody."""
    from sqlalchemy import BigInteger, and_, cast, column, func, select, table

    locks = table("pg_locks", column("pid"), column("locktype"), column("granted"),
                  column("database"), column("classid"), column("objid"), column("objsubid"))
    activity = table("pg_stat_activity", column("pid"), column("application_name"),
                     column("client_addr"), column("backend_start"))
    databases = table("pg_database", column("oid"), column("datname"))
    row = conn.execute(
        select(activity.c.application_name, activity.c.client_addr, activity.c.backend_start)
        .join_from(locks, activity, activity.c.pid == locks.c.pid)
        .where(and_(locks.c.locktype == "advisory", locks.c.granted.is_(True),
                    locks.c.database == select(databases.c.oid).where(
                        databases.c.datname == func.current_database()).scalar_subquery(),
                    cast(locks.c.classid, BigInteger) == (ADVISORY_KEY >> 32) & 0xFFFFFFFF,
                    cast(locks.c.objid, BigInteger) == ADVISORY_KEY & 0xFFFFFFFF,
                    locks.c.objsubid == 1))
        .limit(1)).first()
    if row is None:
        return {}
    started = row.backend_start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") \
        if row.backend_start else "?"
    name = str(row.application_name or "")
    if name.startswith(_APP_PREFIX):  # "thumbsearch writer PID HOST"
        pid, _, host = name[len(_APP_PREFIX):].partition(" ")
        return {"pid": pid or "?", "host": host or None, "started": started}
    return {"pid": "?", "host": str(row.client_addr or "") or None, "started": started}


@contextmanager
def _advisory_lock(engine: Engine, wait: float, asked: float, sleep: Callable[[float], None],
                   monotonic: Callable[[], float], shared: bool = False) -> Iterator[None]:
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from indexer.store.dberrors import safe_url, store_error

    where = f"(a PostgreSQL advisory lock) of the database {safe_url(engine.url)}"
    # The holder as other sessions see it (application_name keeps 63 bytes).
    name = f"{_APP_PREFIX}{os.getpid()} {socket.gethostname()}"[:63]
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise store_error(exc, "taking the writer lock", engine) from exc
    try:
        try:
            conn.execute(select(func.set_config("application_name", name, False)))

            attempt = func.pg_try_advisory_lock_shared if shared else func.pg_try_advisory_lock

            def take() -> bool:
                return bool(conn.execute(select(attempt(ADVISORY_KEY))).scalar())

            taken = _poll(take, wait=wait, sleep=sleep, monotonic=monotonic)
            who = {} if taken else advisory_holder(conn)
        except SQLAlchemyError as exc:
            raise store_error(exc, "taking the writer lock", engine) from exc
        if not taken:
            raise _busy(who, where, asked)
        try:
            yield
        finally:
            with suppress(SQLAlchemyError):  # a lost session has released it already
                unlock = func.pg_advisory_unlock_shared if shared else func.pg_advisory_unlock
                conn.execute(select(unlock(ADVISORY_KEY)))
                conn.execute(select(func.set_config("application_name", "thumbsearch", False)))
    finally:
        with suppress(SQLAlchemyError):
            conn.close()


@contextmanager
def writer_lock(home: Path, what: str, *, wait: float = 0.0,
                sleep: Callable[[float], None] = time.sleep,
                monotonic: Callable[[], float] = time.monotonic,
                engine: Engine | None = None, shared: bool = False) -> Iterator[Path]:
    """Hold the writer lock for the block; wait up to ``wait`` seconds, then WriterBusyError.

    ``shared`` holders run together and exclude only exclusive ones (see the module
    docstring). With the ``engine`` of a PostgreSQL database the database's advisory
    lock is held too, in the same mode (after the file lock, within the same ``wait``).
    """
    started = monotonic()
    with ExitStack() as stack:
        path = stack.enter_context(_file_lock(home, what, wait, sleep, monotonic, shared))
        if engine is not None and engine.dialect.name == "postgresql":
            left = max(0.0, wait - (monotonic() - started))
            stack.enter_context(_advisory_lock(engine, left, wait, sleep, monotonic, shared))
        yield path
