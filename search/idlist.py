"""Lists of video ids (one id or YouTube URL a line, or a CSV column), and their batch answers."""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from indexer.bounds import quote
from indexer.errors import InputError, VideoIdError
from search.ids import VIDEO_ID, parse_video_ref

if TYPE_CHECKING:
    from indexer.service import Service
    from search.neighbours import SimilarResult

__all__ = [
    "ListedAnswer",
    "ListedId",
    "parse_id_csv",
    "parse_id_lines",
    "read_id_list",
    "similar_to_listed",
    "youtube_ids",
]


@dataclass(frozen=True)
class ListedId:
    """One line of an id list: the video id it holds, or why it holds none."""

    line: int
    text: str
    video_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ListedAnswer:
    """The answer to one line: neighbours, or ``error`` ("bad_id", "not_found") and why."""

    line: int
    text: str
    result: SimilarResult | None = None
    error: str | None = None
    message: str | None = None
    video_id: str | None = None
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``similar --json``'s shape plus the line number, or the error and its message."""
        if self.result is not None:
            return {"line": self.line, **self.result.to_json()}
        query = {"video_id": self.video_id} if self.video_id is not None else {"text": self.text}
        out: dict[str, Any] = {"line": self.line, "query": query}
        if self.model is not None:
            out["model"] = self.model
        out.update(error=self.error, message=self.message)
        return out


def parse_id_lines(lines: Iterable[str]) -> list[ListedId]:
    """One entry per line holding an id or URL; blank lines and '#' comment lines are skipped."""
    return _parse_numbered(enumerate(lines, start=1))


def _parse_numbered(lines: Iterable[tuple[int, str]]) -> list[ListedId]:
    out: list[ListedId] = []
    for number, raw in lines:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            out.append(ListedId(line=number, text=text, video_id=parse_video_ref(text)))
        except VideoIdError as exc:
            out.append(ListedId(line=number, text=text, error=str(exc)))
    return out


def parse_id_csv(text: str, source: str, column: str | None = None) -> list[ListedId]:
    """Entries of one CSV column, numbered by file line; blank and '#' cells are skipped.

    The first row is the header. With ``column`` (a header name; case is ignored when
    only one column matches that way) that column is read, else the first one, and then
    a first row that holds a video id is data, not a header.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise InputError(f"ids file {source} is not valid CSV (line {reader.line_num}: "
                         f"{exc})") from None
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0][1]]
    if column is None:
        where = 0
        try:
            parse_video_ref(header[0])
        except VideoIdError:
            rows = rows[1:]
    else:
        folded = [i for i, name in enumerate(header) if name.casefold() == column.casefold()]
        if column in header:
            where = header.index(column)
        elif len(folded) == 1:
            where = folded[0]
        else:
            names = ", ".join(repr(name) for name in header)
            raise InputError(f"ids file {source} has no column {quote(column)} (its header row "
                             f"holds {names})")
        rows = rows[1:]
    return _parse_numbered((line, row[where] if where < len(row) else "")
                           for line, row in rows)


def youtube_ids(listed: Sequence[ListedId], source: str) -> tuple[list[str], list[ListedId]]:
    """The distinct YouTube video ids of a list, in order, and the entries that hold none.

    A local image id ('local:...') is not a YouTube id. Raises InputError when the
    list is empty or no entry holds a YouTube id.
    """
    ids: list[str] = []
    bad: list[ListedId] = []
    for entry in listed:
        if entry.video_id is not None and VIDEO_ID.match(entry.video_id):
            ids.append(entry.video_id)
        elif entry.video_id is not None:
            bad.append(dataclasses.replace(entry, video_id=None, error=(
                f"{quote(entry.text)} is a local image id, not a YouTube video id")))
        else:
            bad.append(entry)
    if not listed:
        raise InputError(f"ids file {source} holds no video ids (it is empty, or only blank "
                         "and '#' comment lines)")
    if not ids:
        first = bad[0]
        raise InputError(f"none of the {len(bad)} entries of ids file {source} holds a "
                         f"YouTube video id (line {first.line}: {first.error})")
    return list(dict.fromkeys(ids)), bad


def read_id_list(source: str, stdin: TextIO | None = None, *, column: str | None = None,
                 as_csv: bool = False) -> list[ListedId]:
    """Read and parse an ids file (UTF-8); ``-`` reads ``stdin`` (default ``sys.stdin``).

    With ``as_csv`` or a ``column`` the file is CSV and one column is read
    (``parse_id_csv``); otherwise it holds one id or URL a line.
    """
    try:
        if source == "-":
            text = (stdin or sys.stdin).read()
        else:
            text = Path(source).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"ids file {source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"ids file {source} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"ids file {source} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot read ids file {source}: {exc.strerror or exc}") from None
    if as_csv or column is not None:
        return parse_id_csv(text, source, column)
    return parse_id_lines(text.splitlines())


def similar_to_listed(service: Service, listed: Sequence[ListedId],
                      k: int = 10) -> list[ListedAnswer]:
    """Answer every line: stored videos in one index search, the rest as per-line errors.

    A video without a stored vector is reported as not found rather than embedded:
    a batch never downloads thumbnails or loads the model.
    """
    from search.neighbours import similar_to_videos

    ids = [entry.video_id for entry in listed if entry.video_id is not None]
    results = iter(similar_to_videos(service, ids, k))
    model = service.spec.model_id
    answers: list[ListedAnswer] = []
    for entry in listed:
        if entry.video_id is None:
            answers.append(ListedAnswer(line=entry.line, text=entry.text, error="bad_id",
                                        message=entry.error))
            continue
        result = next(results)
        if result is not None:
            answers.append(ListedAnswer(line=entry.line, text=entry.text, result=result,
                                        video_id=entry.video_id, model=model))
        else:
            answers.append(ListedAnswer(
                line=entry.line, text=entry.text, error="not_found", video_id=entry.video_id,
                model=model, message=f"{entry.video_id} is not in the corpus (no {model} "
                                     "vector): a batch answers stored videos only; "
                                     f"`thumbsearch similar {entry.video_id}` embeds a "
                                     "YouTube video's thumbnail"))
    return answers
