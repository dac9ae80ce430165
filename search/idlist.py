"""Lists of video ids (one id or YouTube URL a line, or a CSV column), and their batch answers."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from indexer.bounds import QUOTE_LIMIT, open_regular, quote, read_stream
from indexer.errors import InputError, InputFileError, VideoIdError
from indexer.settings import DEFAULT_MAX_IDS_FILE_BYTES
from search.ids import is_video_id, parse_video_ref
from search.rerank import NO_RERANK, Rerank

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

LIMIT_SETTING = "THUMBSEARCH_MAX_IDS_FILE_BYTES"
# No video id or YouTube URL is longer; a longer line is a bad line, never echoed whole.
MAX_LINE_CHARS = 2048
_LINE_BYTES = 4 * MAX_LINE_CHARS  # UTF-8 takes at most 4 bytes a character
_SKIP_CHUNK = 1 << 16


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


def _too_long(number: int, text: str) -> ListedId:
    """A line no id or URL is as long as: kept short, so no message repeats all of it."""
    head = text[:QUOTE_LIMIT]
    return ListedId(line=number, text=head + "...", error=(
        f"too long for a video id or URL (over {MAX_LINE_CHARS} characters, starting "
        f"{head!r}...)"))


def _parse_numbered(lines: Iterable[tuple[int, str]]) -> list[ListedId]:
    out: list[ListedId] = []
    for number, raw in lines:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) > MAX_LINE_CHARS:
            out.append(_too_long(number, text))
            continue
        try:
            out.append(ListedId(line=number, text=text, video_id=parse_video_ref(text)))
        except VideoIdError as exc:
            out.append(ListedId(line=number, text=text, error=str(exc)))
    return out


def _read_lines(handle: BinaryIO, source: str, limit: int) -> list[ListedId]:
    """Parse one id a line from ``handle``, reading at most ``limit`` bytes in all.

    A line longer than MAX_LINE_CHARS is never held whole: its head is kept for the
    message and the rest skipped as it is read.
    """
    out: list[ListedId] = []
    total = number = 0
    while raw := handle.readline(_LINE_BYTES + 1):
        total += len(raw)
        _check_total(total, limit, source)
        if len(raw) > _LINE_BYTES and not raw.endswith(b"\n"):
            while rest := handle.readline(_SKIP_CHUNK):  # the rest of the line, unkept
                total += len(rest)
                _check_total(total, limit, source)
                if rest.endswith(b"\n"):
                    break
            number += 1
            head = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
            if not head.startswith("#"):
                out.append(_too_long(number, head))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"ids file {quote(source)} is not UTF-8 text ({exc.reason} at "
                             f"byte {total - len(raw) + exc.start})") from None
        if number == 0:
            text = text.removeprefix("\ufeff")
        # splitlines() as a whole-file read would: \r and the other line breaks count too.
        pieces = text.splitlines() or [""]
        out.extend(_parse_numbered(enumerate(pieces, start=number + 1)))
        number += len(pieces)
    return out


def _check_total(total: int, limit: int, source: str) -> None:
    if total > limit:
        raise InputFileError(f"ids file {quote(source)} is larger than {_mib(limit)}; raise "
                             f"{LIMIT_SETTING} to read it")


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


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
            names = ", ".join(quote(name, 40) for name in header[:10])
            more = f" and {len(header) - 10} more" if len(header) > 10 else ""
            raise InputError(f"ids file {quote(source)} has no column {quote(column)} (its "
                             f"header row holds {names}{more})")
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
        if entry.video_id is not None and is_video_id(entry.video_id):
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


def read_id_list(source: str, stdin: BinaryIO | TextIO | None = None, *,
                 column: str | None = None, as_csv: bool = False,
                 max_bytes: int = DEFAULT_MAX_IDS_FILE_BYTES) -> list[ListedId]:
    """Read and parse an ids file (UTF-8) of at most ``max_bytes``; ``-`` reads ``stdin``.

    ``stdin`` defaults to ``sys.stdin``. A path must be a regular file (not a FIFO or
    device). With ``as_csv`` or a ``column`` the file is CSV and one column is read
    (``parse_id_csv``); otherwise it holds one id or URL a line.
    """
    try:
        with _opened(source, stdin, max_bytes) as handle:
            if not (as_csv or column is not None):
                return _read_lines(handle, source, max_bytes)
            data = read_stream(handle, max_bytes, "ids file", LIMIT_SETTING, source)
    except FileNotFoundError:
        raise InputError(f"ids file {quote(source)}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read ids file {quote(source)}: "
                         f"{exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"ids file {quote(source)} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None
    return parse_id_csv(text, source, column)


@contextmanager
def _opened(source: str, stdin: BinaryIO | TextIO | None,
            max_bytes: int) -> Iterator[BinaryIO]:
    """The bytes of ``source``: stdin for ``-``, else a regular file within ``max_bytes``."""
    if source == "-":
        given = stdin if stdin is not None else sys.stdin
        stream = getattr(given, "buffer", given)  # the bytes under a text stream
        if isinstance(stream.read(0), bytes):
            yield cast(BinaryIO, stream)
        else:  # a text stream with no bytes under it (a StringIO): read within the limit
            text = cast(TextIO, stream).read(max_bytes + 1)
            yield io.BytesIO(text.encode("utf-8"))
        return
    if not os.path.lexists(source):
        raise InputError(f"ids file {quote(source)}: no such file")
    with open_regular(Path(source), "ids file") as handle:
        _check_total(os.fstat(handle.fileno()).st_size, max_bytes, source)
        yield handle


def similar_to_listed(service: Service, listed: Sequence[ListedId], k: int = 10,
                      rerank: Rerank = NO_RERANK) -> list[ListedAnswer]:
    """Answer every line: stored videos in one index search, the rest as per-line errors.

    A video without a stored vector is reported as not found rather than embedded:
    a batch never downloads thumbnails or loads the model.
    """
    from search.neighbours import similar_to_videos

    ids = [entry.video_id for entry in listed if entry.video_id is not None]
    results = iter(similar_to_videos(service, ids, k, rerank))
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
