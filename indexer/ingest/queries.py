"""Ingest YouTube search results: search pages -> thumbnails -> vectors -> store and index."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from indexer.errors import InputError
from indexer.ingest.claims import query_key
from indexer.ingest.details import Details
from indexer.ingest.enrich import unenriched_video_ids
from indexer.ingest.loop import Loop
from indexer.ingest.pipeline import PipelineResult, WorkItem
from indexer.ingest.run import IngestRun, ingest_run
from indexer.ingest.source import WAIT, Group, Wait
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.service import Service
from indexer.youtube.client import SearchOptions, parse_rfc3339
from indexer.youtube.cursors import Cursor, load_cursors, save_cursor
from indexer.youtube.queryfile import MAX_PAGES, QuerySpec
from indexer.youtube.quota import pacific_day

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


@dataclass
class _Page:
    """A page read from a query's search, accounted for once its new videos are stored."""

    query: _Query
    ids: list[str]  # the page's video ids, in its order
    ranks: dict[str, int]  # video id -> rank within the query's pass
    known: set[str]  # ids stored already (by now, perhaps by another worker)
    saved: Cursor  # the cursor after this page, saved once the page is stored
    more: bool  # whether the query's pass has more pages
    accounted: bool = False


class _QuerySource:
    """The search queries as a source: rounds of one page a query, each page's new videos.

    Each query is claimed before its pages are read and let go once its pass is stored.

    Queries share the day's search budget fairly: the run goes in rounds, one page
    per query a round, queries ordered by priority (highest first), then by fewest
    pages read so far, so one query with many pages cannot starve the rest. New
    videos get their details from videos.list, 50 ids a call. With ``resume`` (a
    queries file) each query's page token is kept across runs, so a run stopped by
    the quota is continued where it stopped, never repeating a page.

    Several workers can run the same queries at once against one database, on one host or
    many (``indexer.ingest.claims``). A worker claims a query before reading its pages and keeps
    the claim until its pass's last page is stored; with ``resume`` it then reads the
    query's cursor again, so it goes on from the page the last holder stored (or finds the
    pass done today). A query another worker holds is left to it and looked at again once
    this worker's other queries are done: still held, it waits; let go, it is done (read
    again only through its cursor); expired, its holder was killed and this worker takes it
    over. Each new video on a page is claimed too, so a video that two queries find at once
    is downloaded and embedded by one worker; the other links it to its query once stored.
    """

    claims = True

    def __init__(self, run: IngestRun, queries: list[_Query], resume: bool,
                 progress: Progress) -> None:
        self.run = run
        self.service = run.service
        self.queries = queries
        self.resume = resume
        self.progress = progress
        self.seen: set[str] = set()

    def groups(self) -> Iterator[Group[_Page] | Wait]:
        """Round-robin over the due queries until each pass ends; a page a query a round."""
        now = self.service.store.now()
        active = []
        for query in self.queries:
            if query.cursor.due(now) or not self.resume:
                active.append(query)
            else:  # not in the plan: no progress
                query.stats["state"] = "done today"
        waiting: list[_Query] = []
        while active or waiting:
            if not active:
                yield WAIT  # our stored passes let go of their queries meanwhile
                active = self.waiting_turn(waiting)
                waiting = [q for q in waiting if q not in active and q.stats["state"] == "due"]
                if not active and waiting:
                    time.sleep(self.run.claims.poll_interval)
                    continue
            active.sort(key=_Query.sort_key)
            still = []
            for query in active:
                claimed = self.claim(query)
                if claimed is False:
                    waiting.append(query)
                elif claimed:
                    page = self.page(query)
                    yield page
                    if page.note.more:
                        still.append(query)
            active = still

    def page(self, query: _Query) -> Group[_Page]:
        """Read one page of ``query``: its new videos, to be claimed and stored.

        The page is accounted for (links, cursor, counts, progress) once its videos are
        stored, while later pages are already being read and downloaded.
        """
        service, cursor, spec = self.service, query.cursor, query.spec
        page = service.youtube.search_page(spec.q, cursor.page_token, spec.per_page,
                                           query.options)
        now = service.store.now()
        if not cursor.open:  # a new pass begins with this page
            cursor.pass_pages = 0
            cursor.params = _params_of(query.options)
        self.run.summary.pages += 1
        ids = [v.video_id for v in page.videos]
        known = service.store.embedded_ids(ids, service.spec.model_id) | (self.seen & set(ids))
        fresh = {v.video_id: v for v in page.videos if v.video_id not in known}
        self.seen.update(ids)
        ranks = {vid: cursor.pass_pages * spec.per_page + rank for rank, vid in enumerate(ids)}
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
        items = [WorkItem(meta=v, url=v.thumbnail_url or service.settings.thumbnail_url(vid))
                 for vid, v in fresh.items()]
        return Group(items, _Page(query, ids, ranks, known, saved, more))

    def settle(self, group: Group[_Page], ids: list[str]) -> set[str]:
        """Ids another worker stored: known to the page, or linked now once it went by."""
        page = group.note
        done = self.service.store.embedded_ids(ids, self.service.spec.model_id)
        if not page.accounted:
            page.known |= done
            return done
        query = page.query
        for video_id in (v for v in ids if v in done):
            self.service.store.link_query(query.cursor.query_id,
                                          [(video_id, page.ranks[video_id])])
            self.run.summary.known += 1
            query.stats["known"] += 1
        return done

    def stored(self, group: Group[_Page], result: PipelineResult) -> list[str]:
        """Account for a stored page (or for videos taken over from another worker)."""
        page, stored = group.note, result.stored
        query = page.query
        if group.handover:
            self.service.store.link_query(query.cursor.query_id,
                                          [(v, page.ranks[v]) for v in stored])
            query.stats["new"] += len(stored)
            return stored
        page.accounted = True
        cursor, spec, saved = query.cursor, query.spec, page.saved
        known_count = sum(1 for i in page.ids if i in page.known)
        self.run.summary.known += known_count
        self.service.store.link_query(cursor.query_id, list(page.ranks.items()))
        if self.resume:
            saved.stored = cursor.stored  # an earlier page may have inserted the row
            save_cursor(self.service.store, saved)
            cursor.stored = True
        if not page.more:  # the pass is stored: another worker may read the query now
            self.run.claims.release([query_key(cursor.key)])
        stats = query.stats
        stats["pages"] += 1
        stats["new"] += len(stored)
        stats["known"] += known_count
        self.progress.advanced(spec.label, len(page.ids),
                               f"page {saved.pass_pages}: {len(stored)} new, {known_count} known")
        if not page.more:
            stats["state"] = "pass done"
            self.progress.finished(spec.label, "pass done")
        return stored

    def _done_today(self, query: _Query, why: str) -> None:
        query.stats["state"] = "done today"
        self.progress.finished(query.spec.label, why)

    def claim(self, query: _Query) -> bool | None:
        """Hold ``query`` for this run: True to read it, False when another worker holds
        it, None when there is nothing left to read (with ``resume``, its cursor read again
        after the claim says so)."""
        claims, key = self.run.claims, query_key(query.cursor.key)
        if key in claims.held():
            return True
        if key not in claims.claim([key]):
            return False
        if not self.resume:
            return True
        store = self.service.store
        cursor = load_cursors(store, [(query.cursor.key, query.cursor.query_id)])[
            query.cursor.key]
        if cursor.open and cursor.pass_pages >= query.spec.pages:
            cursor.page_token = None
        if not cursor.due(store.now()):
            claims.release([key])
            self._done_today(query, "pass done today by another worker")
            return None
        if cursor.open != query.cursor.open or cursor.page_token != query.cursor.page_token:
            query.options = (_options_of(cursor.params) if cursor.open
                             else query.spec.options(store.now()))
        query.cursor = cursor
        query.stats["pass_page"] = cursor.pass_pages
        return True

    def waiting_turn(self, waiting: list[_Query]) -> list[_Query]:
        """Queries other workers held that can be read now (their claim was let go or
        expired); those let go without a cursor (no ``resume``) were read there."""
        held = self.run.claims.others([query_key(q.cursor.key) for q in waiting])
        ready = []
        for query in waiting:
            expired = held.get(query_key(query.cursor.key))
            if expired is None and not self.resume:
                self._done_today(query, "read by another worker")
            elif expired is None or expired:
                ready.append(query)
        return ready

    def stopped_by_quota(self) -> None:
        """Mark the queries still due as stopped by the quota."""
        for query in self.queries:
            if query.stats["state"] == "due":
                query.stats["state"] = "stopped by quota"
                self.progress.finished(query.spec.label, "stopped by quota")


def _plan(queries: list[_Query], resume: bool, now: datetime) -> Plan:
    """``ingest: 2 queries, up to 100 videos``: the queries due, each up to its pages left."""
    due = [q for q in queries if q.cursor.due(now) or not resume]
    tasks = tuple(Task(q.spec.label, q.spec.per_page * (
        q.spec.pages - q.cursor.pass_pages if q.cursor.open else q.spec.pages), "videos")
        for q in due)
    text = (f"{plural(len(due), 'query', 'queries')}, up to "
            f"{plural(sum(t.total for t in tasks), 'video')}" if due else "no query is due")
    if len(due) < len(queries):
        text += f" ({len(queries) - len(due)} {'more ' if due else ''}done for today)"
    return Plan("ingest", text, tasks, "videos", of="queries")


def _next_pass(now: datetime) -> str:
    """When a pass done today can run again: the next midnight, Pacific time."""
    return f"{pacific_day(now) + timedelta(days=1):%Y-%m-%d} 00:00 Pacific"


def run_queries(service: Service, specs: Sequence[QuerySpec], *, resume: bool = True,
                wait: float = 0.0, progress: Progress | None = None) -> IngestSummary:
    """Ingest the queries within the day's quota, sharing it fairly (see ``_QuerySource``).

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
        skipped_before = dict(youtube.skipped)
        queries = _prepare(service, specs, resume)
        source = _QuerySource(run, queries, resume, progress)
        details = Details(service, summary, unenriched_video_ids(service.store),  # left by a
                          ends_run=True, progress=progress)  # quota stop
        progress.started(_plan(queries, resume, service.store.now()))
        try:
            stop = Loop(source, run, summary=summary, claims=run.claims,
                        model=service.spec.model_id, details=details).run()
            if stop is not None:
                source.stopped_by_quota()
                raise stop
        finally:
            summary.search_calls = youtube.calls["search"] - start.get("search", 0)
            summary.videos_calls = youtube.calls["videos"] - start.get("videos", 0)
            summary.count_skipped(skipped_before, youtube.skipped)
            for query in queries:
                query.stats["next_page_token"] = query.cursor.page_token
                query.stats["pass_page"] = query.cursor.pass_pages if query.cursor.open else 0
                summary.per_query[query.spec.label] = query.stats
        if resume and not (summary.pages or summary.videos_calls or summary.stopped):
            summary.nothing_to_do = ("every query's pass is done for today (next pass after "
                                     f"{_next_pass(service.store.now())})")
    progress.ended(f"nothing to do: {summary.nothing_to_do}" if summary.nothing_to_do
                   else summary.totals())
    return summary
