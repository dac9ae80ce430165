"""Ingest local image files and folders (for example thumbnails saved by yt-dlp)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.bounds import hash_regular_file, is_video_id, open_regular, quote
from indexer.errors import ImagePathError, InputError, InputFileError
from indexer.images.decode import IMAGE_SUFFIXES
from indexer.ingest.loop import Loop
from indexer.ingest.pipeline import PipelineResult, WorkItem
from indexer.ingest.run import ingest_run
from indexer.ingest.source import Group
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.records import Failure, VideoMeta
from indexer.service import Service
from indexer.settings import DEFAULT_MAX_IMAGE_BYTES

__all__ = ["INFO_JSON_MAX_BYTES", "LOCAL_ID_PREFIX", "add_paths", "discover_images",
           "local_video_id", "meta_for_file"]

LOCAL_ID_PREFIX = "local:"
# yt-dlp's default output template ends in " [<video id>].<ext>".
# \Z, not $ ($ also matches before a trailing newline, which a file name can hold).
YTDLP_NAME = re.compile(r"(?P<title>.*?)\s*\[(?P<id>[A-Za-z0-9_-]{11})\]\Z")
# yt-dlp writes a few hundred kB at most (its format lists are the bulk); more is not one.
INFO_JSON_MAX_BYTES = 4 * 1024 * 1024
_LAST_TIMESTAMP = 4_102_444_800  # 2100-01-01: no upload is dated later
_MAX_TEXT = 1_000  # characters of a title, channel or id field
_MAX_CHARS = {"description": 100_000, "thumbnail": 4_000}


def local_video_id(data: bytes) -> str:
    """A stable id for an image without a video id: derived from its content."""
    return LOCAL_ID_PREFIX + hashlib.sha256(data).hexdigest()[:16]


def discover_images(paths: Sequence[Path]) -> Iterator[Path]:
    """Image files named directly or found under folders, in a stable order.

    Under a folder every entry with an image suffix that is not a folder is listed,
    FIFOs and devices included, so that reading refuses and counts them.
    """
    for path in paths:
        if not path.exists():
            raise ImagePathError(f"{path}: no such file or folder")
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
        else:
            yield path


def _info_json(path: Path, ignored: list[str]) -> dict[str, Any]:
    """The object of the .info.json beside ``path``; {} when absent or unusable (counted)."""
    info_path = path.with_name(path.stem + ".info.json")
    if not os.path.lexists(info_path):
        return {}
    try:
        with open_regular(info_path, ".info.json") as handle:
            raw = handle.read(INFO_JSON_MAX_BYTES + 1)
        if len(raw) > INFO_JSON_MAX_BYTES:
            ignored.append(f"{info_path.name}: larger than {INFO_JSON_MAX_BYTES // 1024 // 1024} "
                           "MiB, not read")
            return {}
        data = json.loads(raw.decode("utf-8"))
    except InputFileError as exc:
        ignored.append(str(exc))
        return {}
    except OSError as exc:
        ignored.append(f"{info_path.name}: cannot read ({exc.strerror})")
        return {}
    except UnicodeDecodeError:
        ignored.append(f"{info_path.name}: not UTF-8 text")
        return {}
    except ValueError:  # JSONDecodeError, or a number of too many digits
        ignored.append(f"{info_path.name}: not valid JSON")
        return {}
    except RecursionError:
        ignored.append(f"{info_path.name}: nested too deeply")
        return {}
    if not isinstance(data, dict):
        ignored.append(f"{info_path.name}: not a JSON object")
        return {}
    return data


class _Fields:
    """Fields of one .info.json, each checked as it is read; a bad one is noted and skipped."""

    def __init__(self, info: dict[str, Any], name: str, ignored: list[str]) -> None:
        self.info = info
        self.name = name
        self.ignored = ignored

    def bad(self, key: str, why: str) -> None:
        """Note that field ``key`` is left out, and why."""
        self.ignored.append(f"{self.name}: {key} {quote(self.info[key])} {why}")

    def text(self, key: str) -> str | None:
        """A string field of at most its length; None when absent or bad."""
        value = self.info.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.bad(key, "is not a string")
            return None
        if len(value) > _MAX_CHARS.get(key, _MAX_TEXT):
            self.bad(key, "is too long")
            return None
        return value

    def timestamp(self, key: str) -> datetime | None:
        """A Unix time between 1970 and 2100; None when absent or bad."""
        value = self.info.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(key, "is not a number")
            return None
        # NaN fails both comparisons; a huge int is compared exactly, never converted.
        if not 0 <= value < _LAST_TIMESTAMP:
            self.bad(key, "is not a time from 1970 to 2100")
            return None
        return datetime.fromtimestamp(value, UTC)

    def upload_date(self) -> datetime | None:
        """``upload_date`` (YYYYMMDD) as midnight UTC; None when absent or bad."""
        value = self.text("upload_date")
        if value is None:
            return None
        try:
            if not re.fullmatch(r"\d{8}", value):
                raise ValueError(value)
            return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            self.bad("upload_date", "is not a date YYYYMMDD")
            return None

    def published(self) -> datetime | None:
        """The first good one of timestamp, release_timestamp and upload_date."""
        found = [self.timestamp("timestamp"), self.timestamp("release_timestamp"),
                 self.upload_date()]  # all read, so each bad one is counted
        return next((value for value in found if value is not None), None)


def meta_for_file(path: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
                  ignored: list[str] | None = None) -> VideoMeta:
    """Metadata of a local image: from a yt-dlp name and .info.json, or from its content.

    Each .info.json field is checked on its own: a bad one is described in ``ignored``
    and left out, the rest is used. A file without a video id in its name is hashed
    while it is read, up to ``max_bytes``.
    """
    notes = [] if ignored is None else ignored
    match = YTDLP_NAME.fullmatch(path.stem)
    if match:
        fields = _Fields(_info_json(path, notes), path.stem + ".info.json", notes)
        video_id = fields.text("id")
        if video_id is not None and not is_video_id(video_id):
            fields.bad("id", "is not a video id")
            video_id = None
        if video_id is None or video_id == match["id"]:
            return VideoMeta(
                video_id=match["id"], source="youtube",
                title=fields.text("title") or match["title"],
                description=fields.text("description") or "",
                channel_id=fields.text("channel_id") or "",
                channel_title=fields.text("channel") or fields.text("uploader") or "",
                published_at=fields.published(),
                thumbnail_url=_web_url(fields),
            )
    try:
        digest, _size = hash_regular_file(path, max_bytes, "image",
                                          "THUMBSEARCH_MAX_IMAGE_BYTES")
    except InputFileError as exc:
        raise ImagePathError(str(exc)) from None
    except OSError as exc:
        raise ImagePathError(f"{path}: cannot read ({exc.strerror})") from exc
    return VideoMeta(video_id=LOCAL_ID_PREFIX + digest[:16], source="file", title=path.stem,
                     thumbnail_url=path.resolve().as_uri())


def _web_url(fields: _Fields) -> str:
    value = fields.text("thumbnail")
    if value is None:
        return ""
    if not value.lower().startswith(("https://", "http://")):
        fields.bad("thumbnail", "is not an http(s) URL")
        return ""
    return value


def _check_named_files(paths: Sequence[Path], max_bytes: int) -> None:
    """Refuse a file named on the command line that is not a regular file or too large."""
    for path in paths:
        if path.exists() and not path.is_dir():
            with open_regular(path, "image") as handle:
                if os.fstat(handle.fileno()).st_size > max_bytes:
                    size = (f"{max_bytes / 1024 / 1024:.1f} MiB" if max_bytes >= 1024 * 1024
                            else f"{max_bytes} bytes")
                    raise InputFileError(f"image {quote(path)} is larger than {size}; raise "
                                         "THUMBSEARCH_MAX_IMAGE_BYTES to read it")


def add_paths(service: Service, paths: Sequence[Path], *,
              progress: Progress | None = None) -> IngestSummary:
    """Ingest image files and folders through the same stages as a search ingest.

    A file named in ``paths`` that cannot be read (not a regular file, over the image
    size limit) stops the call before anything is written; one found under a folder is
    skipped and counted as failed with its reason. Bad .info.json fields are counted in
    the summary's ``ignored_fields``. ``progress`` counts the images as they are stored,
    found stored already, or fail.
    """
    if not paths:
        raise InputError("give at least one image file or folder")
    max_bytes = service.settings.max_image_bytes
    files = list(discover_images(paths))
    if not files:
        raise ImagePathError("no image files found in " + ", ".join(str(p) for p in paths))
    _check_named_files(paths, max_bytes)
    progress = progress or NullProgress()
    with ingest_run(service, "files") as run:
        progress.started(Plan("add", plural(len(files), "image"),
                              (Task(IMAGES, len(files), "images"),), "images"))
        source = _FileSource(service, files, run.summary, progress)
        Loop(source, run, summary=run.summary).run()
        progress.finished(IMAGES, "done")
        summary = run.summary
        if not summary.new and not summary.failed:
            summary.nothing_to_do = (f"all {plural(len(files), 'image')} are already in the "
                                     "corpus")
    progress.ended(f"nothing to do: {summary.nothing_to_do}" if summary.nothing_to_do
                   else summary.totals())
    return summary


IMAGES = "images"  # the label of add's one task


class _FileSource:
    """Local image files as a source: groups of a batch of files whose image is not stored
    yet, each file read (and hashed) as its group is read."""

    claims = False

    def __init__(self, service: Service, files: list[Path], summary: IngestSummary,
                 progress: Progress) -> None:
        self.service = service
        self.files = files
        self.summary = summary
        self.progress = progress
        self.seen: set[str] = set()  # image ids read so far

    def groups(self) -> Iterator[Group[int]]:
        """The files' items, each image once, a batch of files a group (its note: how
        many files it stands for); unreadable files counted as failed."""
        size = max(1, self.service.settings.batch_size)
        for start in range(0, len(self.files), size):
            chunk = self.files[start:start + size]
            items = self._items(chunk)
            known = self.service.store.embedded_ids(items, self.service.spec.model_id)
            self.summary.known += len(known)
            todo = [item for vid, item in items.items() if vid not in known]
            if todo:
                yield Group(todo, len(chunk))
            else:
                self.progress.advanced(IMAGES, len(chunk), "already stored")

    def _items(self, files: list[Path]) -> dict[str, WorkItem]:
        summary, max_bytes = self.summary, self.service.settings.max_image_bytes
        items: dict[str, WorkItem] = {}
        for path in files:
            try:
                meta = meta_for_file(path, max_bytes, summary.ignored_fields)
            except ImagePathError as exc:
                summary.failed.append(Failure(str(path), str(exc)))
                continue
            if meta.video_id in self.seen:
                summary.known += 1  # the same image twice in this call
                continue
            self.seen.add(meta.video_id)
            items[meta.video_id] = WorkItem(meta=meta, path=path)
        return items

    def settle(self, group: Group[int], ids: list[str]) -> set[str]:
        """Nothing is claimed, so nothing is settled elsewhere."""
        return set()

    def stored(self, group: Group[int], result: PipelineResult) -> list[str]:
        """Count the group's files; local files want no details (the loop counted what was
        stored)."""
        self.progress.advanced(IMAGES, group.note, f"{len(result.stored)} new, "
                                                   f"{len(result.failed)} failed")
        return []
