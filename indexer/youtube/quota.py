"""The quota ledger: API units spent per Pacific-time day and bucket, charged before each call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from importlib import import_module
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError

from indexer.errors import QuotaExceededError
from indexer.store.metadata import Store
from indexer.store.schema import quota_ledger
from indexer.youtube.client import quota_reset_message

__all__ = ["BUCKETS", "BucketUse", "QuotaLedger", "pacific_day"]

PACIFIC = ZoneInfo("America/Los_Angeles")
SEARCH = "search"
UNITS = "units"
BUCKETS = (SEARCH, UNITS)
_BUCKET_NAMES = {SEARCH: "search.list calls", UNITS: "API units (videos.list and others)"}


def pacific_day(moment: datetime) -> date:
    """The Pacific-time calendar day of a moment (the day YouTube's quota counts)."""
    return moment.astimezone(PACIFIC).date()


@dataclass(frozen=True)
class BucketUse:
    """How much of one bucket a day has used."""

    bucket: str
    used: int
    limit: int
    exhausted: bool  # the API itself answered quotaExceeded

    @property
    def remaining(self) -> int:
        """What is left today (0 once the API has said quotaExceeded)."""
        return 0 if self.exhausted else max(0, self.limit - self.used)


class QuotaLedger:
    """Charges API calls against daily budgets kept in the database.

    YouTube resets its quotas at midnight Pacific time. Since June 2026 ``search.list``
    has its own bucket (calls a day); every other method shares one bucket of units.
    A charge is one conditional ``UPDATE ... SET used = used + cost WHERE used + cost
    <= limit``: check and charge happen in a single statement inside one transaction,
    so several workers sharing the database (SQLite, or PostgreSQL across hosts) can never
    spend more than the limit between them.
    """

    def __init__(self, store: Store, search_limit: int, units_limit: int) -> None:
        self.store = store
        self.limits = {SEARCH: search_limit, UNITS: units_limit}

    def _key(self, bucket: str) -> tuple[str, datetime]:
        if bucket not in self.limits:
            raise ValueError(f"unknown quota bucket {bucket!r}")
        now = self.store.now()
        return pacific_day(now).isoformat(), now

    def _ensure_row(self, conn: Any, day: str, bucket: str, now: datetime) -> None:
        # Another worker may insert the same row at the same moment: insert-or-ignore.
        values = {"day": day, "bucket": bucket, "used": 0, "updated_at": now}
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            module = import_module(f"sqlalchemy.dialects.{dialect}")
            conn.execute(module.insert(quota_ledger).values(**values).on_conflict_do_nothing())
            return
        exists = conn.execute(select(quota_ledger.c.used).where(
            quota_ledger.c.day == day, quota_ledger.c.bucket == bucket)).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(quota_ledger).values(**values))
            except IntegrityError:
                pass

    def charge(self, bucket: str, cost: int = 1) -> None:
        """Spend ``cost`` from today's ``bucket`` before a call, or raise QuotaExceededError."""
        day, now = self._key(bucket)
        limit = self.limits[bucket]

        def write(conn: Any) -> int:
            self._ensure_row(conn, day, bucket, now)
            result = conn.execute(
                update(quota_ledger)
                .where(and_(quota_ledger.c.day == day, quota_ledger.c.bucket == bucket,
                            quota_ledger.c.exhausted_at.is_(None),
                            quota_ledger.c.used + cost <= limit))
                .values(used=quota_ledger.c.used + cost, updated_at=now))
            return int(result.rowcount)

        if not self.store.transact("charging API quota", write):
            use = self.use(bucket)
            why = ("YouTube answered quotaExceeded" if use.exhausted
                   else f"{use.used} of {use.limit} spent")
            raise QuotaExceededError(
                f"the day's budget of {_BUCKET_NAMES[bucket]} is used up ({why}, Pacific day "
                f"{day}): {quota_reset_message(now)}")

    def mark_exhausted(self, bucket: str) -> None:
        """Record that YouTube itself refused a call of ``bucket`` with quotaExceeded today."""
        day, now = self._key(bucket)

        def write(conn: Any) -> None:
            self._ensure_row(conn, day, bucket, now)
            conn.execute(update(quota_ledger)
                         .where(quota_ledger.c.day == day, quota_ledger.c.bucket == bucket)
                         .values(exhausted_at=now, updated_at=now))

        self.store.transact("recording an exhausted quota", write)

    def use(self, bucket: str, day: date | None = None) -> BucketUse:
        """Today's (or ``day``'s) use of one bucket."""
        return self.today(day)[bucket]

    def today(self, day: date | None = None) -> dict[str, BucketUse]:
        """Use of every bucket on ``day`` (default: today, Pacific time)."""
        key = (day or pacific_day(self.store.now())).isoformat()
        if not self.store.exists() or not inspect(self.store.engine).has_table("quota_ledger"):
            rows: dict[str, Any] = {}
        else:
            rows = self.store.transact("reading the quota ledger", lambda conn: {
                r.bucket: r for r in conn.execute(
                    select(quota_ledger).where(quota_ledger.c.day == key))})
        out = {}
        for bucket in BUCKETS:
            row = rows.get(bucket)
            out[bucket] = BucketUse(bucket, int(row.used) if row else 0, self.limits[bucket],
                                    bool(row is not None and row.exhausted_at is not None))
        return out

    def history(self) -> dict[str, dict[str, int]]:
        """Units used per Pacific day and bucket, oldest day first."""
        if not self.store.exists():
            return {}
        rows = self.store.transact("reading the quota ledger", lambda conn: list(conn.execute(
            select(quota_ledger).order_by(quota_ledger.c.day, quota_ledger.c.bucket))))
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            out.setdefault(row.day, {})[row.bucket] = int(row.used)
        return out

    def summary(self) -> dict[str, Any]:
        """Today's use as the ``stats --json`` ``quota`` object."""
        now = self.store.now()
        use = self.today()
        return {"day": pacific_day(now).isoformat(), "resets": quota_reset_message(now),
                **{b: {"used": u.used, "limit": u.limit, "remaining": u.remaining,
                       "exhausted": u.exhausted} for b, u in use.items()}}
