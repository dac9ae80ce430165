"""Ingest YouTube search results: search pages -> thumbnails -> vectors -> store and index.

Queries share the day's search budget fairly: the run goes in rounds, one page
per query a round, queries ordered by priority (highest first), then by fewest
pages read so far, so one query with many pages cannot starve the rest. New
videos get their details from videos.list, 50 ids a call. With ``resume`` (a
queries file) each query's page token is kept across runs, so a run stopped by
the quota is continued where it stopped, never repeating a page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from indexer.cursors import Cursor, load_cursors, save_cursor
from indexer.enrich import enrich_videos, unenriched_video_ids
from indexer.errors import InputError, QuotaExceededError
from indexer.pipeline import WorkItem
from indexer.progress import NullProgress, Progress
from indexer.queryfile import MAX_PAGES, QuerySpec
from indexer.runs import IngestRun, ingest_run
from indexer.service import Service
from indexer.summary import IngestSummary
from indexer.youtube import MAX_IDS_PER_CALL, SearchOptions, parse_rfc3339

__all__ = ["MAX_PAGES", "ingest_queries", "run_queries"]


def _validate(queries: Sequence[str], pages: int, per_page: int) -> list[str]:
    cleaned = [q.strip() for q in queries if q.strip()]
    if not cleaned:
        raise InputError("give at least one non-empty search query")
    if not 1 <= pages <= MAX_PAGES:
        raise InputError(f"--pages must be between 1 and {MAX_PAGES}, got {pages}")
    if not 1 <= per_page <= 50:
        raise InputError(f"--per-page must be between 1 and 50, got {per_page}")
    return list(dict.fromkeys(cleaned))


def ingest_queries(service: Service, queries: Sequence[str], *, pages: int = 1,
                   per_page: int = 50, wait: float = 0.0,
                   progress: Progress | None = None) -> IngestSummary:
    """Run each search query for up to ``pages`` pages and ingest the videos not yet stored.

    A video found again, by the same or another query, is linked to the query but not
    downloaded or embedded again. When the quota runs out the run stops after storing
    what it got, and the summary's ``stopped`` says so. Ad-hoc queries always start at
    their first page (no resume).
    """
    cleaned = _validate(queries, pages, per_page)
    specs = [QuerySpec(q=q, pages=pages, per_page=per_page) for q in cleaned]
    return run_queries(service, specs, resume=False, wait=wait, progress=progress)


@dataclass
class _Query:
    spec: QuerySpec
    position: int  # in the file: the last tie-breaker
    cursor: Cursor
    options: SearchOptions
    stats: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[int, int, datetime, int]:
        last = self.cursor.last_fetched_at or datetime.min.replace(tzinfo=UTC)
        return (-self.spec.priority, self.cursor.pages_total, last, self.position)


def _options_of(params: dict[str, Any]) -> SearchOptions:
    return SearchOptions(order=params.get("order"), region_code=params.get("region_code"),
                         relevance_language=params.get("relevance_language"),
                         published_after=parse_rfc3339(params.get("published_after")),
                         safe_search=params.get("safe_search"))


def _params_of(options: SearchOptions) -> dict[str, Any]:
    return {"order": options.order, "region_code": options.region_code,
            "relevance_language": options.relevance_language,
            "published_after": (options.published_after.isoformat()
                                if options.published_after else None),
            "safe_search": options.safe_search}


def _prepare(service: Service, specs: Sequence[QuerySpec], resume: bool) -> list[_Query]:
    store = service.store
    now = store.now()
    ids = [(spec.key, store.query_id(spec.q)) for spec in specs]
    cursors = (load_cursors(store, ids) if resume
               else {key: Cursor(key=key, query_id=qid) for key, qid in ids})
    out = []
    for position, spec in enumerate(specs):
        cursor = cursors[spec.key]
        if cursor.open and cursor.pass_pages >= spec.pages:  # the file lowered `pages`
            cursor.page_token = None
        # An open pass keeps its filters (published_within was resolved when it began).
        options = _options_of(cursor.params) if cursor.open else spec.options(now)
        out.append(_Query(spec, position, cursor, options, {
            "pages": 0, "new": 0, "known": 0, "pass_page": cursor.pass_pages,
            "resumed": cursor.open, "state": "due"}))
    return out


class _Runner:
    """One run over the queries: rounds of one page each, enrichment in batches of 50."""

    def __init__(self, run: IngestRun, resume: bool, progress: Progress) -> None:
        self.run = run
        self.service = run.service
        self.resume = resume
        self.progress = progress
        self.seen: set[str] = set()
        self.to_enrich: list[str] = []
        self.stop: QuotaExceededError | None = None

    def page(self, query: _Query) -> bool:
        """Read one page of ``query`` and submit its new videos; return whether its pass
        has more pages.

        The page is accounted for (links, cursor, counts, progress) once its videos are
        stored, while later pages are already being read and downloaded.
        """
        service, summary, cursor, spec = self.service, self.run.summary, query.cursor, query.spec
        page = service.youtube.search_page(spec.q, cursor.page_token, spec.per_page,
                                           query.options)
        now = service.store.now()
        if not cursor.open:  # a new pass begins with this page
            cursor.pass_pages = 0
            cursor.params = _params_of(query.options)
        summary.pages += 1
        ids = [v.video_id for v in page.videos]
        known = service.store.embedded_ids(ids, service.spec.model_id) | (self.seen & set(ids))
        fresh = {v.video_id: v for v in page.videos if v.video_id not in known}
        self.seen.update(ids)
        known_count = sum(1 for i in ids if i in known)
        ranks = [(vid, cursor.pass_pages * spec.per_page + rank) for rank, vid in enumerate(ids)]
        cursor.pass_pages += 1
        cursor.pages_total += 1
        cursor.last_fetched_at = now
        cursor.page_token = page.next_page_token
        more = cursor.page_token is not None and cursor.pass_pages < spec.pages
        if not more:
            cursor.page_token = None
            cursor.passes_done += 1
            cursor.pass_done_at = now
        # Saved only once the page is stored, so a crash before that reads it again.
        saved = dataclasses.replace(cursor, params=dict(cursor.params))

        def stored_page(stored: list[str]) -> None:
            summary.known += known_count
            service.store.link_query(cursor.query_id, ranks)
            if self.resume:
                saved.stored = cursor.stored  # an earlier page may have inserted the row
                save_cursor(service.store, saved)
                cursor.stored = True
            stats = query.stats
            stats["pages"] += 1
            stats["new"] += len(stored)
            stats["known"] += known_count
            self.progress.advanced(spec.label, f"page {saved.pass_pages}: {len(stored)} new, "
                                               f"{known_count} known")
            if not more:
                stats["state"] = "pass done"
                self.progress.finished(spec.label, "pass done")
            self.to_enrich.extend(stored)
            if len(self.to_enrich) >= MAX_IDS_PER_CALL and self.stop is None:
                try:
                    self.enrich(full_batches_only=True)
                except QuotaExceededError as exc:
                    self.stop = exc  # raised by rounds(); later pages are still accounted

        self.run.submit([WorkItem(meta=v, url=v.thumbnail_url
                                  or service.settings.thumbnail_url(v.video_id))
                         for v in fresh.values()], stored_page)
        return more

    def enrich(self, full_batches_only: bool = False) -> None:
        """Give stored new videos their videos.list details (whole batches first)."""
        count = len(self.to_enrich)
        if full_batches_only:
            count -= count % MAX_IDS_PER_CALL
        if count:
            batch, self.to_enrich = self.to_enrich[:count], self.to_enrich[count:]
            enrich_videos(self.service, self.run.summary, batch)

    def rounds(self, queries: list[_Query]) -> None:
        """Round-robin over the due queries until each pass ends or the quota stops the run."""
        now = self.service.store.now()
        active = []
        for query in queries:
            if query.cursor.due(now) or not self.resume:
                active.append(query)
            else:
                query.stats["state"] = "done today"
                self.progress.finished(query.spec.label, "pass already done today")
        while active:
            active.sort(key=_Query.sort_key)
            still = []
            for query in active:
                if self.page(query):
                    still.append(query)
                if self.stop is not None:
                    raise self.stop
            active = still
        self.run.drain()
        if self.stop is not None:
            raise self.stop


def run_queries(service: Service, specs: Sequence[QuerySpec], *, resume: bool = True,
                wait: float = 0.0, progress: Progress | None = None) -> IngestSummary:
    """Ingest the queries within the day's quota, sharing it fairly; see the module docstring.

    A quota stop (ours or YouTube's) ends the run cleanly: what was fetched is stored,
    each query's page token is kept (with ``resume``), ``summary.stopped`` says when
    the quota resets.
    """
    if not specs:
        raise InputError("no queries to run")
    progress = progress or NullProgress()
    youtube = service.youtube  # fails on a missing key before anything is written
    with ingest_run(service, "queries" if resume else "search", wait=wait) as run:
        summary = run.summary
        summary.queries = len(specs)
        start = dict(youtube.calls)
        queries = _prepare(service, specs, resume)
        runner = _Runner(run, resume, progress)
        runner.to_enrich.extend(unenriched_video_ids(service.store))  # left by a quota stop
        progress.started([(q.spec.label, q.spec.pages - q.cursor.pass_pages if q.cursor.open
                           else q.spec.pages) for q in queries])
        try:
            try:
                try:
                    runner.rounds(queries)
                except QuotaExceededError:
                    runner.run.drain()  # pages read before the stop are stored and linked
                    raise
            finally:
                # Details of what was stored, even after a search quota stop (another bucket).
                stop: QuotaExceededError | None = runner.stop
                try:
                    if stop is None:
                        runner.enrich()
                except QuotaExceededError as exc:
                    stop = exc
            if stop is not None:
                raise stop
        except QuotaExceededError:
            for query in queries:
                if query.stats["state"] == "due":
                    query.stats["state"] = "stopped by quota"
                    progress.finished(query.spec.label, "stopped by quota")
            raise
        finally:
            summary.search_calls = youtube.calls["search"] - start.get("search", 0)
            summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
            for query in queries:
                query.stats["next_page_token"] = query.cursor.page_token
                query.stats["pass_page"] = query.cursor.pass_pages if query.cursor.open else 0
                summary.per_query[query.spec.label] = query.stats
    return summary
