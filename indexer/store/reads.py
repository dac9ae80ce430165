"""The reads a lookup needs, and a lean way to do them on a SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import numpy as np

from indexer.errors import StoreError
from indexer.records import StoredVideo

__all__ = [
    "IN_CHUNK",
    "Reads",
    "SqliteReads",
    "as_utc",
    "in_chunks",
    "matrix_from_blobs",
    "sqlite_file",
    "stored_video",
    "vector_from_blob",
]

# Ids a query binds at most: SQLite refuses more than 32,766 variables in one statement.
IN_CHUNK = 500


def in_chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in slices of IN_CHUNK, for ``IN (...)`` clauses of any length."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


def as_utc(value: datetime | None) -> datetime | None:
    """A stored moment in UTC: SQLite hands back naive datetimes, PostgreSQL aware ones."""
    if value is None:
        return value
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return value.replace(tzinfo=UTC)


def vector_from_blob(blob: bytes, dim: int) -> np.ndarray:
    """A stored vector (little-endian float32 bytes) as float32 of ``dim`` values."""
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape != (dim,):
        raise StoreError(f"stored vector has {vector.size} values, expected {dim}")
    return vector.astype(np.float32)


def matrix_from_blobs(blobs: Sequence[bytes], dims: Sequence[int]) -> np.ndarray:
    """Stored vectors of one dimension as one float32 (n, dim) matrix, filled in place."""
    dim = int(dims[0])
    out = np.empty((len(blobs), dim), np.float32)
    for n, (blob, size) in enumerate(zip(blobs, dims, strict=True)):
        if int(size) != dim or len(blob) != dim * 4:
            raise StoreError(f"stored vector has {len(blob) // 4} values, expected {dim}")
        out[n] = np.frombuffer(blob, dtype="<f4")
    return out


def stored_video(row: Mapping[str, Any], fetched_default: datetime) -> StoredVideo:
    """A ``videos`` row (by column name, datetimes parsed) as a StoredVideo."""
    return StoredVideo(
        video_id=row["video_id"], source=row["source"], title=row["title"],
        channel_id=row["channel_id"], channel_title=row["channel_title"],
        published_at=as_utc(row["published_at"]), thumbnail_url=row["thumbnail_url"],
        fetched_at=as_utc(row["fetched_at"]) or fetched_default,
        description=row["description"], thumbnail_sha256=row["thumbnail_sha256"])


class Reads(Protocol):
    """What looking up neighbours reads from the database.

    A lookup by video id reads the stored vector, replays the index's tail, re-scores
    candidates and names the neighbours: a handful of queries. ``Reads`` is that
    protocol; ``Store`` (SQLAlchemy) implements it for every database, and
    ``SqliteReads`` implements it on a SQLite file with the standard library's
    ``sqlite3``, so a command that only looks up never imports SQLAlchemy (whose
    import costs a lookup more than the search itself). Both answer from the same
    tables with the same results, which the tests check row by row.
    """

    def exists(self) -> bool:
        """True when the database has been created."""

    def counts(self, model: str) -> dict[str, int]:
        """Numbers of videos, vectors (for ``model``) and queries."""

    def get_vector(self, video_id: str, model: str) -> tuple[int, np.ndarray] | None:
        """The (row id, vector) stored for a video and model, or None."""

    def get_videos(self, video_ids: Sequence[str]) -> dict[str, StoredVideo]:
        """Stored videos by id; missing ids are absent from the result."""

    def video_ids_for_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Map embedding row ids (FAISS ids) to video ids."""

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row ids, vectors) past ``after``, in id order."""

    def iter_row_ids(self, model: str, after: int = 0,
                     batch: int = 100_000) -> Iterator[np.ndarray]:
        """Yield the row ids of ``model``'s vectors past ``after``, ascending."""

    def vectors_for_rows(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, vectors) of the rows that exist, in no order."""


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (no driver, no options), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix):]
    return Path(path) if path not in ("", ":memory:") else None


def _moment(text: Any) -> datetime | None:
    # SQLAlchemy's SQLite DateTime is ISO text ("2026-11-25 10:00:00.000000").
    return None if text is None else datetime.fromisoformat(str(text))


class SqliteReads:
    """``Reads`` on a SQLite file through ``sqlite3`` (opened on first use, read only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._exists = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                # Not mode=ro: a reader of a WAL database may need to create its -shm file.
                conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA query_only=ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open database {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def _rows(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._connection()
        try:
            cursor = conn.execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return list(cursor)
        except sqlite3.Error as exc:
            raise StoreError(f"database error while {what}: {exc}") from exc

    def _rows_in(self, what: str, sql: str, values: Sequence[Any]) -> Iterator[sqlite3.Row]:
        """The rows of ``sql``, whose ``IN ({marks})`` takes ``values``, IN_CHUNK at a time."""
        for chunk in in_chunks(values):
            yield from self._rows(what, sql.format(marks=",".join("?" * len(chunk))), chunk)

    def _pages(self, what: str, sql: str, model: str, after: int,
               batch: int) -> Iterator[list[sqlite3.Row]]:
        """The rows of ``sql`` (embedding rows, id first, for ``model = ? AND id > ?``,
        ordered by id, ``LIMIT ?``) past ``after``, ``batch`` a read."""
        last = after
        while True:
            rows = self._rows(what, sql, [model, last, batch])
            if not rows:
                return
            yield rows
            last = int(rows[-1][0])

    def close(self) -> None:
        """Close the connection (reopened if used again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def exists(self) -> bool:
        """True when the file holds the ``videos`` table (remembered once true: it stays so)."""
        if not self._exists and self.path.is_file():
            self._exists = bool(self._rows("reading the database", "SELECT 1 FROM sqlite_master "
                                           "WHERE type = 'table' AND name = 'videos'"))
        return self._exists

    def counts(self, model: str) -> dict[str, int]:
        """Numbers of videos, vectors (for ``model``) and queries."""
        one = self._rows("counting", "SELECT (SELECT count(*) FROM videos), "
                         "(SELECT count(*) FROM embeddings WHERE model = ?), "
                         "(SELECT count(*) FROM queries)", [model])[0]
        return {"videos": int(one[0]), "vectors": int(one[1]), "queries": int(one[2])}

    def get_vector(self, video_id: str, model: str) -> tuple[int, np.ndarray] | None:
        """The (row id, vector) stored for a video and model, or None."""
        rows = self._rows("reading a vector", "SELECT id, vector, dim FROM embeddings "
                          "WHERE video_id = ? AND model = ?", [video_id, model])
        if not rows:
            return None
        return int(rows[0]["id"]), vector_from_blob(rows[0]["vector"], int(rows[0]["dim"]))

    def get_videos(self, video_ids: Sequence[str]) -> dict[str, StoredVideo]:
        """Stored videos by id; missing ids are absent from the result."""
        out: dict[str, StoredVideo] = {}
        now = datetime.now(UTC)
        for row in self._rows_in("reading videos", "SELECT video_id, source, title, channel_id, "
                                 "channel_title, published_at, thumbnail_url, fetched_at, "
                                 "description, thumbnail_sha256 FROM videos WHERE video_id IN "
                                 "({marks})", list(dict.fromkeys(video_ids))):
            values = dict(row)
            values["published_at"] = _moment(values["published_at"])
            values["fetched_at"] = _moment(values["fetched_at"])
            out[values["video_id"]] = stored_video(values, now)
        return out

    def video_ids_for_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Map embedding row ids (FAISS ids) to video ids."""
        return {int(r[0]): r[1] for r in self._rows_in(
            "reading embeddings", "SELECT id, video_id FROM embeddings WHERE id IN ({marks})",
            [int(i) for i in row_ids])}

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row ids int64 (n,), vectors float32 (n, dim)) past ``after``, in id order."""
        for rows in self._pages("reading vectors", "SELECT id, vector, dim FROM embeddings "
                               "WHERE model = ? AND id > ? ORDER BY id LIMIT ?", model, after,
                               batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, matrix_from_blobs([r[1] for r in rows], [int(r[2]) for r in rows])

    def iter_row_ids(self, model: str, after: int = 0,
                     batch: int = 100_000) -> Iterator[np.ndarray]:
        """Yield the row ids (int64 (n,)) of ``model``'s vectors past ``after``, ascending."""
        for rows in self._pages("reading row ids", "SELECT id FROM embeddings WHERE model = ? "
                               "AND id > ? ORDER BY id LIMIT ?", model, after, batch):
            yield np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors_for_rows(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(row ids int64 (m,), vectors float32 (m, dim)) of the rows that exist, in no order."""
        wanted = sorted({int(r) for r in row_ids if r >= 0})
        rows = list(self._rows_in("reading vectors", "SELECT id, vector, dim FROM embeddings "
                                  "WHERE id IN ({marks})", wanted))
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, matrix_from_blobs([r[1] for r in rows], [int(r[2]) for r in rows])
