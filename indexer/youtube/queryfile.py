"""Search queries to ingest: one spec per query, read from a TOML queries file."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from indexer.bounds import quote, read_regular_file
from indexer.errors import InputError, InputFileError, QueriesFileError, UsageError, one_line
from indexer.settings import DEFAULT_MAX_QUERIES_FILE_BYTES
from indexer.youtube.client import SearchOptions, parse_rfc3339

__all__ = ["MAX_DURATION", "MAX_PAGES", "QuerySpec", "load_queries_file", "parse_duration",
           "parse_queries"]

MAX_PAGES = 10  # YouTube returns about 500 results per query at most
MAX_PRIORITY = 1_000_000
ORDERS = ("relevance", "date", "viewCount", "rating", "title", "videoCount")
SAFE_SEARCH = ("none", "moderate", "strict")
_KEYS = {"q", "pages", "per_page", "order", "region_code", "relevance_language",
         "published_after", "published_within", "safe_search", "priority"}
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"([0-9]+)\s*([wdhms])")
# The longest duration taken: 100 years, far inside timedelta (about 2.7 million years) and
# what a datetime can go back from now; nothing longer is a sensible age or interval.
MAX_DURATION = timedelta(days=36_500)
_MAX_DURATION_TEXT = 40  # characters: "1w2d3h4m5s" needs 10; refused before any int()


def parse_duration(text: str, name: str = "") -> timedelta:
    """'7d', '6h', '1d12h', '90m', '30s' or '2w' as a timedelta from 1s to MAX_DURATION.

    Anything else is a UsageError (exit 2) naming ``name`` (e.g. ``--older-than``).
    """
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned) if len(cleaned) <= _MAX_DURATION_TEXT else []
    if not parts or _DURATION.sub("", cleaned).strip():
        raise UsageError(f"not a duration{' for ' + name if name else ''}: {quote(text)} "
                         "(use e.g. 30d, 6h, 90m, 1d12h; from 1s to 36500d)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in parts)
    if seconds < 1:
        raise UsageError(f"{name or 'a duration'} must be positive, got {quote(text)}")
    if seconds > MAX_DURATION.total_seconds():
        raise UsageError(f"{name or 'a duration'} must be at most 36500d (100 years), "
                         f"got {quote(text)}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class QuerySpec:
    """One search query with its parameters, paging limits and priority."""

    q: str
    pages: int = 1
    per_page: int = 50
    order: str | None = None
    region_code: str | None = None
    relevance_language: str | None = None
    published_after: datetime | None = None
    published_within: timedelta | None = None
    safe_search: str | None = None
    priority: int = 0

    @property
    def label(self) -> str:
        """How the query is named in progress lines and run records."""
        extras = [f"{k}={v}" for k, v in (
            ("order", self.order), ("region", self.region_code),
            ("lang", self.relevance_language), ("safe", self.safe_search),
            ("after", self.published_after.date() if self.published_after else None),
            ("within", _format_duration(self.published_within))) if v]
        return self.q + (f" [{', '.join(extras)}]" if extras else "")

    @property
    def key(self) -> str:
        """Stable identity of the result list: the query text and the filters, not paging."""
        ident = {"q": self.q, "order": self.order, "region_code": self.region_code,
                 "relevance_language": self.relevance_language,
                 "safe_search": self.safe_search, "per_page": self.per_page,
                 "published_after": self.published_after.isoformat()
                 if self.published_after else None,
                 "published_within": self.published_within.total_seconds()
                 if self.published_within else None}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def options(self, now: datetime) -> SearchOptions:
        """The search filters of a pass starting at ``now`` (published_within becomes a date)."""
        after = self.published_after
        if self.published_within is not None:
            after = (now - self.published_within).replace(microsecond=0)
        return SearchOptions(order=self.order, region_code=self.region_code,
                             relevance_language=self.relevance_language,
                             published_after=after, safe_search=self.safe_search)


def _format_duration(value: timedelta | None) -> str | None:
    if value is None:
        return None
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _int(entry: dict[str, Any], key: str, default: int, low: int, high: int,
         where: str) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueriesFileError(f"{where}: {key} must be a whole number between {low} and "
                               f"{high}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A value of the file, cut short for an error line (a huge int is not spelled out)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 20:
        return f"a number of {len(str(abs(value)))} digits"
    return quote(value) if isinstance(value, str) else quote(repr(value))


def _text(entry: dict[str, Any], key: str, where: str,
          choices: tuple[str, ...] | None = None) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise QueriesFileError(f"{where}: {key} must be a non-empty string, "
                               f"got {_shown(value)}")
    if choices and value not in choices:
        raise QueriesFileError(f"{where}: {key} must be one of {', '.join(choices)}, "
                               f"got {_shown(value)}")
    return value.strip()


def _published_after(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    parsed = parse_rfc3339(value) if isinstance(value, str) else None
    if parsed is None:
        raise QueriesFileError(f"{where}: published_after must be a date or RFC 3339 time "
                               f"such as 2026-01-01T00:00:00Z, got {_shown(value)}")
    return parsed


def _spec(entry: Any, where: str, pages: int, per_page: int) -> QuerySpec:
    if not isinstance(entry, dict):
        raise QueriesFileError(f"{where}: each [[queries]] entry must be a table")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise QueriesFileError(f"{where}: unknown key(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(_KEYS))})")
    q = entry.get("q")
    if not isinstance(q, str) or not q.strip():
        raise QueriesFileError(f"{where}: q must be a non-empty search query")
    if "published_after" in entry and "published_within" in entry:
        raise QueriesFileError(f"{where}: give published_after or published_within, not both")
    within = entry.get("published_within")
    if within is not None:
        if not isinstance(within, str) or len(within) > 40:
            raise QueriesFileError(f"{where}: published_within must be a duration such as "
                                   f"\"7d\" or \"12h\", got {_shown(within)}")
        try:
            within = parse_duration(within)
        except InputError as exc:
            raise QueriesFileError(f"{where}: published_within: {exc}") from None
        except (OverflowError, ValueError):  # more days than a timedelta holds
            raise QueriesFileError(f"{where}: published_within {quote(within)} is too "
                                   "long ago") from None
    region = _text(entry, "region_code", where)
    if region is not None and not re.fullmatch(r"[A-Za-z]{2}", region):
        raise QueriesFileError(f"{where}: region_code must be a two-letter country code, "
                               f"got {_shown(region)}")
    return QuerySpec(
        q=q.strip(), pages=_int(entry, "pages", pages, 1, MAX_PAGES, where),
        per_page=_int(entry, "per_page", per_page, 1, 50, where),
        order=_text(entry, "order", where, ORDERS),
        region_code=region.upper() if region else None,
        relevance_language=_text(entry, "relevance_language", where),
        published_after=_published_after(entry.get("published_after"), where),
        published_within=within,
        safe_search=_text(entry, "safe_search", where, SAFE_SEARCH),
        priority=_int(entry, "priority", 0, -MAX_PRIORITY, MAX_PRIORITY, where))


def parse_queries(text: str, *, source: str = "queries file", pages: int = 1,
                  per_page: int = 50) -> list[QuerySpec]:
    """Specs from TOML text; ``pages`` and ``per_page`` are the defaults entries may override.

    [[queries]]
    q = "cat videos"          # required
    pages = 3                 # pages per pass, 1..10 (default 1, or --pages)
    per_page = 50             # 1..50 (default 50, or --per-page)
    order = "date"            # relevance, date, viewCount, rating, title, videoCount
    region_code = "US"
    relevance_language = "en"
    published_within = "7d"   # or published_after = 2026-01-01T00:00:00Z
    safe_search = "moderate"  # none, moderate, strict
    priority = 10             # higher goes first in each round, -1000000..1000000 (default 0)
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QueriesFileError(f"{source}: not valid TOML: {exc}") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise QueriesFileError(f"{source}: not valid TOML: an integer too long to read "
                               f"({one_line(exc)[:80]})") from None
    except RecursionError:
        raise QueriesFileError(f"{source}: not valid TOML: arrays or tables nested too "
                               "deeply") from None
    extra = sorted(set(data) - {"queries"})
    if extra:
        raise QueriesFileError(f"{source}: unknown top-level key(s) {', '.join(extra)}; "
                               "list queries as [[queries]] tables")
    entries = data.get("queries")
    if not isinstance(entries, list) or not entries:
        raise QueriesFileError(f"{source}: no queries: add [[queries]] tables with q = \"...\"")
    specs = [_spec(entry, f"{source}: query {n}", pages, per_page)
             for n, entry in enumerate(entries, 1)]
    seen: dict[str, int] = {}
    for n, spec in enumerate(specs, 1):
        if spec.key in seen:
            raise QueriesFileError(f"{source}: query {n} repeats query {seen[spec.key]} "
                                   f"({quote(spec.q)} with the same parameters)")
        seen[spec.key] = n
    return specs


def load_queries_file(path: Path, *, pages: int = 1, per_page: int = 50,
                      max_bytes: int = DEFAULT_MAX_QUERIES_FILE_BYTES) -> list[QuerySpec]:
    """Read and check a TOML queries file: a regular file of at most ``max_bytes``."""
    try:
        data = read_regular_file(path, max_bytes, "queries file",
                                 "THUMBSEARCH_MAX_QUERIES_FILE_BYTES")
        text = data.decode("utf-8")
    except InputFileError as exc:
        raise QueriesFileError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QueriesFileError(f"cannot read queries file {quote(path)}: {exc}") from None
    return parse_queries(text, source=str(path), pages=pages, per_page=per_page)
