"""Plain records passed between the ingest stages, the store and the query tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Failure", "StoredVideo", "VideoMeta"]


@dataclass(frozen=True)
class VideoMeta:
    """Metadata of one video (or local image) as it will be stored."""

    video_id: str
    source: str  # "youtube" or "file"
    title: str = ""
    description: str = ""
    channel_id: str = ""
    channel_title: str = ""
    published_at: datetime | None = None
    thumbnail_url: str = ""
    thumbnail_sha256: str | None = None  # key of the bytes in the thumbnail cache


@dataclass(frozen=True)
class StoredVideo:
    """A video row as read back from the store."""

    video_id: str
    source: str
    title: str
    channel_id: str
    channel_title: str
    published_at: datetime | None
    thumbnail_url: str
    fetched_at: datetime
    description: str = field(default="", repr=False)
    thumbnail_sha256: str | None = None


@dataclass(frozen=True)
class Failure:
    """One item that could not be ingested, and why."""

    video_id: str
    reason: str
