"""Ingest YouTube search results: search pages -> thumbnails -> vectors -> store and index."""

from __future__ import annotations

from collections.abc import Sequence

from indexer.errors import InputError
from indexer.pipeline import WorkItem
from indexer.runs import ingest_run
from indexer.service import Service
from indexer.summary import IngestSummary

__all__ = ["MAX_PAGES", "ingest_queries"]

MAX_PAGES = 10  # YouTube returns about 500 results per query at most


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
                   per_page: int = 50) -> IngestSummary:
    """Run each search query for up to ``pages`` pages and ingest the videos not yet stored.

    A video found again, by the same or another query, is linked to the query but not
    downloaded or embedded again. When the quota runs out the run stops after storing
    what it got, and the summary's ``stopped`` says so.
    """
    cleaned = _validate(queries, pages, per_page)
    youtube = service.youtube  # fails on a missing key before anything is written
    store = service.store
    model = service.spec.model_id
    with ingest_run(service, "search") as run:
        summary = run.summary
        summary.queries = len(cleaned)
        seen: set[str] = set()
        for query in cleaned:
            query_id = store.query_id(query)
            token: str | None = None
            for page_number in range(pages):
                summary.search_calls += 1  # charged even when the call fails
                page = youtube.search_page(query, token, per_page)
                summary.pages += 1
                ids = [v.video_id for v in page.videos]
                known = store.embedded_ids(ids, model) | (seen & set(ids))
                summary.known += sum(1 for i in ids if i in known)
                fresh = {v.video_id: v for v in page.videos if v.video_id not in known}
                seen.update(ids)
                run.embed([WorkItem(meta=v, url=v.thumbnail_url
                                    or service.settings.thumbnail_url(v.video_id))
                           for v in fresh.values()])
                store.link_query(query_id, [(vid, page_number * per_page + rank)
                                            for rank, vid in enumerate(ids)])
                token = page.next_page_token
                if token is None:
                    break
    return summary
