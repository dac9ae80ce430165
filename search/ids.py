"""Parsing video ids and the usual YouTube URL forms."""

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qs, urlsplit

from indexer.bounds import VIDEO_ID, is_video_id, quote
from indexer.errors import VideoIdError

__all__ = ["VIDEO_ID", "is_video_id", "parse_video_ref"]

YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
                 "youtube-nocookie.com", "www.youtube-nocookie.com"}
PATH_FORMS = ("shorts", "embed", "live", "v", "e")


@functools.cache
def _local_id() -> re.Pattern[str]:
    from indexer.ingest.local import LOCAL_ID_PREFIX

    return re.compile(re.escape(LOCAL_ID_PREFIX) + r"[0-9a-f]{16}\Z")


def _is_local_id(value: str) -> bool:
    # A local id holds no '/': URLs and plain ids are told apart without importing the
    # ingest side (indexer.ingest.local pulls in the pipeline, requests and Pillow).
    return "/" not in value and _local_id().fullmatch(value) is not None


def _checked(candidate: str, original: str) -> str:
    if is_video_id(candidate):
        return candidate
    raise VideoIdError(f"{quote(original)} does not contain a valid video id "
                       "(11 characters of A-Z, a-z, 0-9, _ and -)")


def parse_video_ref(text: str) -> str:
    """The video id in a bare id, a local id, or a watch/youtu.be/shorts/embed URL.

    Only spaces and tabs around the text are dropped: a line break or any other control
    character is part of the text, and no id holds one.
    """
    value = text.strip(" \t")
    if is_video_id(value) or _is_local_id(value):
        return value
    if "://" not in value and value.split("/")[0].lower() in YOUTUBE_HOSTS | {"youtu.be"}:
        value = "https://" + value
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise VideoIdError(f"{quote(text)} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise VideoIdError(f"{quote(text)} is neither a video id (11 characters of A-Z, a-z, 0-9, "
                           "_ and -) nor a YouTube URL")
    segments = [s for s in parts.path.split("/") if s]
    if host == "youtu.be" and segments:
        return _checked(segments[0], text)
    if host in YOUTUBE_HOSTS:
        if segments[:1] == ["watch"] or not segments:
            ids = parse_qs(parts.query).get("v")
            if ids:
                return _checked(ids[0], text)
        elif len(segments) >= 2 and segments[0] in PATH_FORMS:
            return _checked(segments[1], text)
    raise VideoIdError(f"{quote(text)} is not a YouTube video URL "
                       "(watch?v=, youtu.be/, shorts/ or embed/)")
