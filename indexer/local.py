"""Ingest local image files and folders (for example thumbnails saved by yt-dlp)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.errors import ImagePathError, InputError
from indexer.images import IMAGE_SUFFIXES
from indexer.pipeline import WorkItem
from indexer.records import Failure, VideoMeta
from indexer.runs import ingest_run
from indexer.service import Service
from indexer.summary import IngestSummary
from indexer.youtube import parse_rfc3339

__all__ = ["LOCAL_ID_PREFIX", "add_paths", "discover_images", "local_video_id", "meta_for_file"]

LOCAL_ID_PREFIX = "local:"
# yt-dlp's default output template ends in " [<video id>].<ext>".
# \Z, not $ ($ also matches before a trailing newline, which a file name can hold).
YTDLP_NAME = re.compile(r"(?P<title>.*?)\s*\[(?P<id>[A-Za-z0-9_-]{11})\]\Z")


def local_video_id(data: bytes) -> str:
    """A stable id for an image without a video id: derived from its content."""
    return LOCAL_ID_PREFIX + hashlib.sha256(data).hexdigest()[:16]


def discover_images(paths: Sequence[Path]) -> Iterator[Path]:
    """Image files named directly or found under folders, in a stable order."""
    for path in paths:
        if not path.exists():
            raise ImagePathError(f"{path}: no such file or folder")
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def _info_json(path: Path) -> dict[str, Any]:
    info_path = path.with_name(path.stem + ".info.json")
    if not info_path.is_file():
        return {}
    try:
        data = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _published(info: dict[str, Any]) -> datetime | None:
    timestamp = info.get("timestamp") or info.get("release_timestamp")
    if isinstance(timestamp, int | float):
        return datetime.fromtimestamp(timestamp, UTC)
    date = info.get("upload_date")
    if isinstance(date, str) and re.fullmatch(r"\d{8}", date):
        return parse_rfc3339(f"{date[:4]}-{date[4:6]}-{date[6:]}T00:00:00Z")
    return None


def meta_for_file(path: Path) -> VideoMeta:
    """Metadata of a local image: from a yt-dlp name and .info.json, or from its content."""
    match = YTDLP_NAME.fullmatch(path.stem)
    info = _info_json(path)
    video_id = info.get("id") if isinstance(info.get("id"), str) else None
    if match and (video_id is None or video_id == match["id"]):
        return VideoMeta(
            video_id=match["id"], source="youtube",
            title=str(info.get("title") or match["title"]),
            description=str(info.get("description") or ""),
            channel_id=str(info.get("channel_id") or ""),
            channel_title=str(info.get("channel") or info.get("uploader") or ""),
            published_at=_published(info),
            thumbnail_url=str(info.get("thumbnail") or ""),
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImagePathError(f"{path}: cannot read ({exc.strerror})") from exc
    return VideoMeta(video_id=local_video_id(data), source="file", title=path.stem,
                     thumbnail_url=path.resolve().as_uri())


def add_paths(service: Service, paths: Sequence[Path]) -> IngestSummary:
    """Ingest image files and folders through the same stages as a search ingest."""
    if not paths:
        raise InputError("give at least one image file or folder")
    files = list(discover_images(paths))
    if not files:
        raise ImagePathError("no image files found in " + ", ".join(str(p) for p in paths))
    with ingest_run(service, "files") as run:
        summary = run.summary
        items: dict[str, WorkItem] = {}
        for path in files:
            try:
                meta = meta_for_file(path)
            except ImagePathError as exc:
                summary.failed.append(Failure(str(path), str(exc)))
                continue
            if meta.video_id in items:
                summary.known += 1  # the same image twice in this call
                continue
            items[meta.video_id] = WorkItem(meta=meta, path=path)
        known = service.store.embedded_ids(items, service.spec.model_id)
        summary.known += len(known)
        run.embed([item for vid, item in items.items() if vid not in known])
    return summary
