"""Labelled evaluation sets: a folder with one subfolder per label, or a CSV of item,label."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from indexer.bounds import is_video_id, quote, read_regular_file
from indexer.errors import InputError
from indexer.images.decode import IMAGE_SUFFIXES
from indexer.settings import DEFAULT_MAX_IDS_FILE_BYTES

__all__ = ["KINDS_FILE", "EvalItem", "LabelledSet", "kind_of", "load_labelled_set",
           "read_list_file"]

#: A folder set with this file at its root names each image's variant kind in its file name.
KINDS_FILE = "kinds.txt"
_HEADER_NAMES = {"path", "video_id", "path_or_video_id", "id", "image", "item", "file"}


@dataclass(frozen=True)
class EvalItem:
    """One labelled image: a file path or a YouTube video id (its mqdefault thumbnail)."""

    label: str
    path: Path | None = None
    video_id: str | None = None
    kind: str | None = None  # the variant kind (sets with a kinds.txt), None elsewhere

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


def kind_of(path: Path) -> str:
    """The variant kind in a file name: the name up to its first ``_`` or ``.``
    (``letterbox-mq.jpg`` -> letterbox-mq, ``combo2_crop+grade.jpg`` -> combo2)."""
    return path.name.split(".", 1)[0].split("_", 1)[0]


def _kinds(root: Path, max_bytes: int) -> set[str] | None:
    listed = root / KINDS_FILE
    if not listed.is_file():
        return None
    text = read_list_file(listed, "kinds file", max_bytes)
    return {line.strip() for line in text.splitlines() if line.strip()}


def _from_folder(root: Path, max_bytes: int) -> list[EvalItem]:
    items = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                items.append(EvalItem(label=label_dir.name, path=path))
    kinds = _kinds(root, max_bytes)
    if kinds is None:
        return items
    counts = Counter(item.label for item in items)
    with_kinds = []
    for item in items:
        if counts[item.label] < 2:  # a distractor: never a query, so no kind
            with_kinds.append(item)
            continue
        kind = kind_of(item.path or Path())
        if kind not in kinds:
            raise InputError(f"{item.path}: its kind {quote(kind)} is not listed in "
                             f"{root / KINDS_FILE}")
        with_kinds.append(replace(item, kind=kind))
    return with_kinds


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
        items = _from_folder(path, max_bytes)
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
