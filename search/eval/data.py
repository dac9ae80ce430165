"""Labelled evaluation sets: a folder with one subfolder per label, or a CSV of item,label."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from indexer.bounds import is_video_id, quote, read_regular_file
from indexer.errors import InputError
from indexer.images.decode import IMAGE_SUFFIXES
from indexer.settings import DEFAULT_MAX_IDS_FILE_BYTES

__all__ = ["EvalItem", "LabelledSet", "load_labelled_set", "read_list_file"]

_HEADER_NAMES = {"path", "video_id", "path_or_video_id", "id", "image", "item", "file"}


@dataclass(frozen=True)
class EvalItem:
    """One labelled image: a file path or a YouTube video id (its mqdefault thumbnail)."""

    label: str
    path: Path | None = None
    video_id: str | None = None

    @property
    def name(self) -> str:
        """What to call the item in reports and failure lists."""
        return str(self.path) if self.path is not None else f"video {self.video_id}"


@dataclass(frozen=True)
class LabelledSet:
    """A named list of labelled items."""

    name: str
    source: Path
    items: tuple[EvalItem, ...]


def _from_folder(root: Path) -> list[EvalItem]:
    items = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                items.append(EvalItem(label=label_dir.name, path=path))
    return items


def read_list_file(path: Path, what: str, max_bytes: int) -> str:
    """The text of a CSV list a user gave: a regular UTF-8 file within the ids-file limit."""
    try:
        data = read_regular_file(path, max_bytes, what, "THUMBSEARCH_MAX_IDS_FILE_BYTES")
        return data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc})") from exc


def _from_csv(path: Path, max_bytes: int) -> list[EvalItem]:
    text = read_list_file(path, "CSV", max_bytes)
    items = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"{path}:{number}: expected `path_or_video_id,label`, "
                             f"got {quote(row)}")
        ref, label = row[0].strip(), row[1].strip()
        if number == 1 and ref.lower() in _HEADER_NAMES:
            continue
        candidate = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        if candidate.is_file():
            items.append(EvalItem(label=label, path=candidate))
        elif is_video_id(ref):
            items.append(EvalItem(label=label, video_id=ref))
        else:
            raise InputError(f"{path}:{number}: {quote(ref)} is neither an image file "
                             "(relative paths are read from the CSV's folder) nor a video id")
    return items


def load_labelled_set(path: Path,
                      max_bytes: int = DEFAULT_MAX_IDS_FILE_BYTES) -> LabelledSet:
    """Read a labelled set from a folder of label subfolders or from a CSV file.

    A CSV file must be a regular file of at most ``max_bytes``.
    """
    if not path.exists():
        raise InputError(f"{path}: no such dataset (a folder of label folders or a CSV file)")
    if path.is_dir():
        items = _from_folder(path)
        if not items:
            raise InputError(f"{path}: no images in label subfolders (expected "
                             f"{path}/<label>/<image>)")
        name = path.resolve().name
    else:
        items = _from_csv(path, max_bytes)
        if not items:
            raise InputError(f"{path}: the CSV lists no images")
        name = path.stem
    return LabelledSet(name=name, source=path, items=tuple(items))
