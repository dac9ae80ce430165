"""Leases on shared work, so several ingest workers never do the same thing twice."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterable, Sequence
from datetime import timedelta
from importlib import import_module
from types import TracebackType
from typing import Any

from sqlalchemy import delete, select, update

from indexer.errors import ThumbsearchError
from indexer.store.metadata import Store, in_chunks
from indexer.store.schema import work_claims

__all__ = ["Claims", "new_owner", "query_key", "video_key"]


def new_owner(host: str | None = None) -> str:
    """A name no other run shares: host, pid and a random part (a pid can be reused)."""
    name = (host or socket.gethostname()).replace(":", "-")[:80]
    return f"{name}:{os.getpid()}:{secrets.token_hex(4)}"


def _dead_here(owner: str, host: str) -> bool:
    """Whether ``owner`` names a process of this host that no longer exists."""
    name, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if name != host or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


def video_key(model: str, video_id: str) -> str:
    """The claim on fetching and embedding one video for one model."""
    return f"video:{model}:{video_id}"


def query_key(key: str) -> str:
    """The claim on reading one query's pages (``key``: the query cursor's key)."""
    return f"query:{key}"


def _insert(conn: Any) -> Any:
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ThumbsearchError(f"work claims need SQLite or PostgreSQL, not {dialect}")
    return import_module(f"sqlalchemy.dialects.{dialect}").insert


class Claims:
    """One run's leases: claim, renew (on a background thread while entered), release.

    Use as a context manager: entering starts the renewal thread, leaving stops it and
    deletes every claim still held.

    Workers on one host or many share one database; before a worker reads a query's next
    pages or fetches and embeds a video, it claims the work's key in ``work_claims``:

        INSERT INTO work_claims (key, owner, claimed_at, expires_at) VALUES ...
        ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, ...
        WHERE work_claims.expires_at < :now OR work_claims.owner = excluded.owner
        RETURNING key

    One statement, atomic on PostgreSQL and on SQLite (3.35 or later): it returns the keys
    that are now the caller's, whether they were free, expired or its own already. A claim
    lasts ``lease`` seconds and the worker renews all of its claims every third of that on a
    thread of its own while it works, so a live worker keeps them however long a batch
    takes; when the work is stored the claim is deleted. A killed worker stops renewing, and
    once its claims expire the next worker that asks takes them over; on the same host (the
    same worker name, ``THUMBSEARCH_WORKER_NAME``, default the host name) a claim whose
    process is gone is taken over at once, so a killed run started again goes straight on.
    The claimer then
    checks the store again (what it claimed may have been finished by the worker that held
    it before), so a video is fetched and embedded by one worker only.

    Lease times come from the store's clock on each host: hosts' clocks must agree to well
    within a lease (NTP does).
    """

    def __init__(self, store: Store, lease: float, host: str | None = None) -> None:
        self.store = store
        self.lease = max(0.1, float(lease))
        self.owner = new_owner(host)
        self.host = self.owner.rsplit(":", 2)[0]
        self._mine: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renew_error: ThumbsearchError | None = None  # the last renewal that failed

    @property
    def poll_interval(self) -> float:
        """Seconds to wait before asking again about work another worker holds."""
        return max(0.05, min(1.0, self.lease / 4))

    def held(self) -> set[str]:
        """The keys this run holds."""
        with self._lock:
            return set(self._mine)

    def claim(self, keys: Iterable[str]) -> set[str]:
        """Claim ``keys``; return those now held by this run (free, expired or already ours)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return set()
        now = self.store.now()
        expires = now + timedelta(seconds=self.lease)

        def write(conn: Any) -> set[str]:
            insert = _insert(conn)
            got: set[str] = set()
            for chunk in in_chunks(wanted):
                statement = insert(work_claims).values(
                    [{"key": k, "owner": self.owner, "claimed_at": now, "expires_at": expires}
                     for k in chunk])
                statement = statement.on_conflict_do_update(
                    index_elements=[work_claims.c.key],
                    set_={"owner": statement.excluded.owner,
                          "claimed_at": statement.excluded.claimed_at,
                          "expires_at": statement.excluded.expires_at},
                    where=(work_claims.c.expires_at < now)
                    | (work_claims.c.owner == statement.excluded.owner))
                got.update(str(r[0]) for r in conn.execute(
                    statement.returning(work_claims.c.key)))
            return got

        got: set[str] = self.store.transact("claiming work", write)
        missing = [k for k in wanted if k not in got]
        if missing and self._free_dead_owners(missing):
            got |= self.store.transact("claiming work", write)
        with self._lock:
            self._mine |= got
        return got

    def _free_dead_owners(self, keys: Sequence[str]) -> bool:
        """Delete the claims of this host's processes that are gone; True when any were."""

        def read(conn: Any) -> set[str]:
            return {str(r[0]) for chunk in in_chunks(list(keys)) for r in conn.execute(
                select(work_claims.c.owner).distinct().where(work_claims.c.key.in_(chunk)))}

        owners: set[str] = self.store.transact("reading work claims", read)
        dead = [o for o in owners if o != self.owner and _dead_here(o, self.host)]
        if dead:
            self.store.transact("releasing a dead worker's claims", lambda conn: conn.execute(
                delete(work_claims).where(work_claims.c.owner.in_(dead))))
        return bool(dead)

    def release(self, keys: Iterable[str]) -> None:
        """Give up ``keys`` (the work is stored, or failed for good)."""
        with self._lock:
            mine = [k for k in dict.fromkeys(keys) if k in self._mine]
            self._mine.difference_update(mine)
        if not mine:
            return

        def write(conn: Any) -> None:
            for chunk in in_chunks(mine):
                conn.execute(delete(work_claims).where(work_claims.c.key.in_(chunk),
                                                       work_claims.c.owner == self.owner))

        self.store.transact("releasing work claims", write)

    def release_all(self) -> None:
        """Give up every claim of this run."""
        with self._lock:
            self._mine.clear()
        self.store.transact("releasing work claims", lambda conn: conn.execute(
            delete(work_claims).where(work_claims.c.owner == self.owner)))

    def renew(self) -> None:
        """Push the expiry of every claim this run holds ``lease`` seconds ahead."""
        with self._lock:
            if not self._mine:
                return
        expires = self.store.now() + timedelta(seconds=self.lease)
        self.store.transact("renewing work claims", lambda conn: conn.execute(
            update(work_claims).where(work_claims.c.owner == self.owner)
            .values(expires_at=expires)))

    def others(self, keys: Sequence[str]) -> dict[str, bool]:
        """Which of ``keys`` another run holds: key -> whether that claim has expired."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        now = self.store.now()

        def read(conn: Any) -> dict[str, bool]:
            out: dict[str, bool] = {}
            for chunk in in_chunks(wanted):
                for row in conn.execute(select(work_claims.c.key, work_claims.c.expires_at)
                                        .where(work_claims.c.key.in_(chunk),
                                               work_claims.c.owner != self.owner)):
                    expires = row.expires_at
                    if expires.tzinfo is None:  # SQLite hands back naive UTC
                        expires = expires.replace(tzinfo=now.tzinfo)
                    out[str(row.key)] = expires < now
            return out

        result: dict[str, bool] = self.store.transact("reading work claims", read)
        return result

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.renew()
                self.renew_error = None
            except ThumbsearchError as exc:  # a short outage: the next renewal tries again
                self.renew_error = exc

    def __enter__(self) -> Claims:
        """Start renewing this run's claims in the background."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="claims", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop renewing and release every claim (expiry frees them if this fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.release_all()
        except ThumbsearchError:
            if exc_type is None:
                raise
