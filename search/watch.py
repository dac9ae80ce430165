"""Watchlists: watch a video's or an image's thumbnail, and see the re-uploads found of it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from indexer.bounds import quote
from indexer.errors import EmptyCorpusError, InputError, UsageError
from search.ids import parse_video_ref
from search.neighbours import (
    MAX_K,
    embed_image,
    image_source_bytes,
    video_thumbnail_bytes,
)
from search.strength import LIKELY_REUPLOAD

if TYPE_CHECKING:
    import numpy as np

    from indexer.service import Service
    from indexer.store.watchlist import WatchItem, WatchMatch

__all__ = ["DEFAULT_THRESHOLD", "MAX_NAME", "WatchAdded", "add_to_watchlist", "check_threshold",
           "item_json", "list_watchlist", "parse_since", "remove_from_watchlist",
           "unchecked_items", "watch_matches"]

#: A new video scoring at or above this against a watched item is reported as its re-upload
#: (docs/evaluation.md, "The re-upload threshold").
DEFAULT_THRESHOLD = LIKELY_REUPLOAD
MAX_NAME = 200
_SINCE = re.compile(r"(\d{1,6})\s*([mhdw])\Z")
_MAX_AGE = timedelta(days=36_500)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class WatchAdded:
    """A watched item just added, and the stored videos that already match it."""

    item: WatchItem
    matches: list[WatchMatch]
    searched: int  # vectors in the corpus searched (0: the corpus is empty)
    more: bool  # the search's top MAX_K all matched: there may be more

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of one entry of ``watch add --json``."""
        return {**item_json(self.item), "matches": [m.to_json() for m in self.matches],
                "more_may_match": self.more}


def item_json(item: WatchItem) -> dict[str, Any]:
    return {"name": item.name, "kind": item.kind, "source": item.source,
            "video_id": item.video_id, "model": item.model,
            "threshold": round(item.threshold, 4), "created_at": item.created_at.isoformat(),
            "matches_total": item.matches,
            "latest_match_at": item.latest.isoformat() if item.latest else None}


def check_threshold(threshold: float) -> float:
    """A threshold is a cosine similarity in (0, 1]."""
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise UsageError(f"--threshold is a cosine similarity in (0, 1], got {threshold}")
    return float(threshold)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        raise UsageError(f"a watch name is 1 to {MAX_NAME} printable characters, got "
                         f"{quote(name)}: give one with --name")
    return name


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``1d``, ``2w`` (ago) or an ISO date/time, as a UTC moment."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip().lower())
    if match:
        age = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if age > _MAX_AGE:
            raise UsageError(f"--since goes back at most {_MAX_AGE.days} days, got "
                             f"{quote(text)}")
        return now - age
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since takes an age such as 30m, 12h, 1d or 2w, or an ISO date, "
                         f"got {quote(text)}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _image_name(source: str) -> str:
    path = urlsplit(source).path if "://" in source else source
    return PurePosixPath(path).name or source


def _corpus_matches(service: Service, item: WatchItem) -> tuple[list[Any], int, bool]:
    """The stored videos matching ``item``: one search of the corpus, top MAX_K."""
    from indexer.store.watchlist import SCORE_SLACK, NewMatch

    try:
        corpus = service.require_corpus()
    except EmptyCorpusError:
        return [], 0, False
    k = min(MAX_K, corpus.index.size)
    scores, rows = corpus.index.search(item.vector[None, :].astype("float32"), k)
    hits = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True)
            if r >= 0 and s >= item.threshold - SCORE_SLACK]
    by_row = corpus.reads.video_ids_for_rows(sorted(r for r, _ in hits))
    found = [NewMatch(item.id, by_row[r], s) for r, s in hits
             if r in by_row and by_row[r] != item.video_id]
    return found, corpus.index.size, len(hits) == k and k == MAX_K


def _watch_one(service: Service, *, name: str, kind: str, source: str,
               video_id: str | None, vector: np.ndarray, threshold: float,
               sha256: str | None) -> WatchAdded:
    from indexer.store.watchlist import add_watch_item, record_matches, watch_matches_of

    item = add_watch_item(service.store, name=name, kind=kind, source=source,
                          video_id=video_id, model=service.spec.model_id, vector=vector,
                          threshold=threshold, thumbnail_sha256=sha256)
    found, searched, more = _corpus_matches(service, item)
    record_matches(service.store, found, None)
    matches = watch_matches_of(service.store, names=[item.name])
    return WatchAdded(item, matches, searched, more)


def add_to_watchlist(service: Service, videos: Sequence[str] = (),
                     images: Sequence[str] = (), *, threshold: float | None = None,
                     name: str | None = None,
                     uploads: Sequence[tuple[str, bytes]] = ()) -> list[WatchAdded]:
    """Watch videos (ids or URLs: the stored vector, or the thumbnail embedded now),
    images (files or http(s) URLs) and ``uploads`` (file name, image bytes: the web page's),
    each searched against the corpus once; their matches from then on are found by every
    run that stores videos (``indexer.ingest.watch``).

    Every reference is checked before anything is stored; ``name`` names a single item
    (default: the video id or the image's file name).
    """
    from indexer.images.decode import decode_image

    limit = check_threshold(DEFAULT_THRESHOLD if threshold is None else threshold)
    if not videos and not images and not uploads:
        raise UsageError("name a video (id or URL) or an --image to watch")
    if name is not None and len(videos) + len(images) + len(uploads) > 1:
        raise UsageError("--name names one watched item: give one video or one --image")
    ids = [parse_video_ref(v) for v in videos]
    names = [_check_name(name)] if name is not None else (
        ids + [_check_name(_image_name(i)[:MAX_NAME]) for i in images])
    if name is None:
        names += [_check_name(_image_name(u)[:MAX_NAME]) for u, _ in uploads]
    if len(set(names)) != len(names):
        raise UsageError("two watched items would share a name: add them one at a time with "
                         "--name")
    service.prepare_for_writing()
    from indexer.store.watchlist import watch_items_of

    taken = sorted(set(names) & {item.name for item in watch_items_of(service.store)})
    if taken:
        raise InputError(f"a watched item is already named {taken[0]!r}: pick another "
                         f"--name, or `thumbsearch watch remove {taken[0]}` first")
    # Every thumbnail is read and embedded before anything is stored.
    model = service.spec.model_id
    ready: list[dict[str, Any]] = []
    for video_id in ids:
        stored = service.store.get_vector(video_id, model)
        if stored is not None:
            video = service.store.get_video(video_id)
            ready.append({"kind": "video", "source": video_id, "video_id": video_id,
                          "vector": stored[1],
                          "sha256": video.thumbnail_sha256 if video is not None else None})
            continue
        data = video_thumbnail_bytes(service, video_id)
        image = decode_image(data, service.settings.thumbnail_url(video_id))
        ready.append({"kind": "video", "source": video_id, "video_id": video_id,
                      "vector": embed_image(service, image), "sha256": service.cache.put(data)})
    for source, data in [(i, image_source_bytes(service, i)) for i in images] + list(uploads):
        ready.append({"kind": "image", "source": source, "video_id": None,
                      "vector": embed_image(service, decode_image(data, quote(source))),
                      "sha256": service.cache.put(data)})
    return [_watch_one(service, name=label, threshold=limit, **fields)
            for label, fields in zip(names, ready, strict=True)]


def list_watchlist(service: Service) -> list[WatchItem]:
    """Every watched item, oldest first, with its match count and latest match."""
    from indexer.store.watchlist import watch_items_of

    return watch_items_of(service.store)


def unchecked_items(service: Service, items: Sequence[WatchItem]) -> list[str]:
    """The names of ``items`` runs of the service's model cannot check: embedded with another
    model, and not a video whose vector this model has stored."""
    from indexer.store.watchlist import vector_under

    model = service.spec.model_id
    return [item.name for item in items if vector_under(service.store, item, model) is None]


def remove_from_watchlist(service: Service, names: Sequence[str]) -> int:
    """Stop watching ``names`` (all or none); how many recorded matches went with them."""
    from indexer.store.watchlist import remove_watch_items

    if not names:
        raise UsageError("name the watched items to remove (see `thumbsearch watch list`)")
    return remove_watch_items(service.store, list(dict.fromkeys(names)))


def watch_matches(service: Service, *, since: datetime | None = None,
                  names: Sequence[str] = (), run_id: int | None = None,
                  limit: int | None = None) -> list[WatchMatch]:
    """Recorded re-uploads, newest first (see ``indexer.store.watchlist.watch_matches_of``)."""
    from indexer.store.watchlist import watch_matches_of

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    return watch_matches_of(service.store, since=since, names=list(names) or None,
                            run_id=run_id, limit=limit)
