"""The metadata store: videos, queries, embeddings and runs, over SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, cast, column, func, insert, select, table, update
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError
from indexer.process import ProcessIdentity, this_process
from indexer.records import StoredVideo, VideoMeta
from indexer.store.db import has_schema, upgrade_database
from indexer.store.dberrors import store_error
from indexer.store.reads import (
    IN_CHUNK,
    in_chunks,
    matrix_from_blobs,
    stored_video,
    vector_from_blob,
)
from indexer.store.schema import embeddings, ingest_runs, queries, query_videos, videos
from indexer.store.serialise import insert_new, serialise_embedding_inserts

__all__ = ["IN_CHUNK", "Store", "in_chunks"]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _vector_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


class Store:
    """Reads and writes the source of truth; every write is one transaction."""

    def __init__(self, engine: Engine, clock: Clock = _utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._exists = False

    def upgrade(self) -> None:
        """Create or upgrade the schema (called by commands that write)."""
        upgrade_database(self.engine)

    def exists(self) -> bool:
        """True when the database has been created (remembered once true: it stays so)."""
        if not self._exists:
            self._exists = has_schema(self.engine)
        return self._exists

    def now(self) -> datetime:
        """The store's clock: the current time in UTC (injectable in tests)."""
        return self._clock()

    def transact(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(connection)`` in one transaction; database errors become StoreError."""
        return self._run(what, fn)

    def _run(self, what: str, fn: Callable[[Any], Any]) -> Any:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise store_error(exc, what, self.engine) from exc

    # -- reads ----------------------------------------------------------------

    def embedded_ids(self, video_ids: Iterable[str], model: str) -> set[str]:
        """The subset of ``video_ids`` that already has a vector for ``model``."""
        wanted = list(dict.fromkeys(video_ids))
        if not wanted:
            return set()

        def read(conn: Any) -> set[str]:
            found: set[str] = set()
            for chunk in in_chunks(wanted):
                rows = conn.execute(
                    select(embeddings.c.video_id).where(
                        embeddings.c.video_id.in_(chunk), embeddings.c.model == model))
                found.update(row[0] for row in rows)
            return found

        result: set[str] = self._run("reading known videos", read)
        return result

    def get_video(self, video_id: str) -> StoredVideo | None:
        """One stored video, or None."""
        found = self.get_videos([video_id])
        return found.get(video_id)

    def get_videos(self, video_ids: Sequence[str]) -> dict[str, StoredVideo]:
        """Stored videos by id; missing ids are absent from the result."""
        ids = list(dict.fromkeys(video_ids))

        def read(conn: Any) -> dict[str, StoredVideo]:
            out: dict[str, StoredVideo] = {}
            for chunk in in_chunks(ids):
                rows = conn.execute(select(videos).where(videos.c.video_id.in_(chunk)))
                for row in rows.mappings():
                    out[row["video_id"]] = stored_video(row, self._clock())
            return out

        result: dict[str, StoredVideo] = self._run("reading videos", read)
        return result

    def get_vector(self, video_id: str, model: str) -> tuple[int, np.ndarray] | None:
        """The (row id, vector) stored for a video and model, or None."""

        def read(conn: Any) -> tuple[int, np.ndarray] | None:
            row = conn.execute(select(embeddings.c.id, embeddings.c.vector, embeddings.c.dim)
                               .where(embeddings.c.video_id == video_id,
                                      embeddings.c.model == model)).first()
            if row is None:
                return None
            return int(row.id), vector_from_blob(row.vector, int(row.dim))

        result: tuple[int, np.ndarray] | None = self._run("reading a vector", read)
        return result

    def video_ids_for_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Map embedding row ids (FAISS ids) to video ids."""
        ids = [int(i) for i in row_ids]

        def read(conn: Any) -> dict[int, str]:
            out: dict[int, str] = {}
            for chunk in in_chunks(ids):
                rows = conn.execute(select(embeddings.c.id, embeddings.c.video_id).where(
                    embeddings.c.id.in_(chunk)))
                out.update({int(r.id): r.video_id for r in rows})
            return out

        result: dict[int, str] = self._run("reading embeddings", read)
        return result

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row ids int64 (n,), vectors float32 (n, dim)) past ``after``, in id order."""
        for rows in self._pages(model, after, batch, vectors=True):
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            yield ids, matrix_from_blobs([r.vector for r in rows], [int(r.dim) for r in rows])

    def iter_row_ids(self, model: str, after: int = 0,
                     batch: int = 100_000) -> Iterator[np.ndarray]:
        """Yield the row ids (int64 (n,)) of ``model``'s vectors past ``after``, ascending."""
        for rows in self._pages(model, after, batch, vectors=False):
            yield np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))

    def _pages(self, model: str, after: int, batch: int, vectors: bool) -> Iterator[list[Any]]:
        """Embedding rows of ``model`` past ``after`` in id order, ``batch`` a read (one
        transaction each): the id, and the vector and dim when ``vectors``."""
        columns = [embeddings.c.id, *((embeddings.c.vector, embeddings.c.dim) if vectors
                                      else ())]
        last = after
        while True:
            def read(conn: Any, last: int = last) -> list[Any]:
                return list(conn.execute(
                    select(*columns).where(embeddings.c.model == model, embeddings.c.id > last)
                    .order_by(embeddings.c.id).limit(batch)))

            rows: list[Any] = self._run("reading vectors" if vectors else "reading row ids",
                                        read)
            if not rows:
                return
            yield rows
            last = int(rows[-1].id)

    def vectors_for_rows(self, row_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(row ids int64 (m,), vectors float32 (m, dim)) of the rows that exist, in no order."""
        wanted = sorted({int(r) for r in row_ids if r >= 0})

        def read(conn: Any) -> list[Any]:
            return [row for chunk in in_chunks(wanted) for row in conn.execute(
                select(embeddings.c.id, embeddings.c.vector, embeddings.c.dim)
                .where(embeddings.c.id.in_(chunk)))]

        rows: list[Any] = self._run("reading vectors", read) if wanted else []
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
        return ids, matrix_from_blobs([r.vector for r in rows], [int(r.dim) for r in rows])

    def counts(self, model: str) -> dict[str, int]:
        """Numbers of videos, vectors (for ``model``) and queries."""

        def read(conn: Any) -> dict[str, int]:
            return {
                "videos": int(conn.execute(select(func.count()).select_from(videos)).scalar_one()),
                "vectors": int(conn.execute(select(func.count()).select_from(embeddings)
                                            .where(embeddings.c.model == model)).scalar_one()),
                "queries": int(conn.execute(
                    select(func.count()).select_from(queries)).scalar_one()),
            }

        result: dict[str, int] = self._run("counting", read)
        return result

    def max_row_id(self, model: str) -> int:
        """Highest embedding row id for ``model`` (0 when none)."""
        value = self._run("reading the last row id", lambda conn: conn.execute(
            select(func.max(embeddings.c.id)).where(embeddings.c.model == model)).scalar())
        return int(value or 0)

    def highest_row_id(self) -> int:
        """Highest embedding row id ever handed out, deleted rows included (0 when none).

        Row ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL): an
        index watermark past this means the database is older than the index, while past
        ``max_row_id`` it may only mean that the newest rows were deleted (a prune).
        """
        def read(conn: Any) -> int:
            latest = int(conn.execute(select(func.max(embeddings.c.id))).scalar() or 0)
            handed: Any = None
            if conn.dialect.name == "sqlite":
                sequences = table("sqlite_sequence", column("name"), column("seq"))
                handed = conn.execute(select(sequences.c.seq).where(
                    sequences.c.name == embeddings.name)).scalar()
            elif conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import REGCLASS

                sequence = func.pg_get_serial_sequence(embeddings.name, embeddings.c.id.name)
                handed = conn.execute(select(func.pg_sequence_last_value(
                    cast(sequence, REGCLASS)))).scalar()
            return max(latest, int(handed or 0))

        result: int = self._run("reading the highest row id", read)
        return result

    def channel_of_videos(self) -> dict[str, str]:
        """Video id -> channel id, for videos that have a channel (evaluation labels)."""

        def read(conn: Any) -> dict[str, str]:
            rows = conn.execute(select(videos.c.video_id, videos.c.channel_id)
                                .where(videos.c.channel_id != ""))
            return {r.video_id: r.channel_id for r in rows}

        result: dict[str, str] = self._run("reading channels", read)
        return result

    def first_query_of_videos(self) -> dict[str, str]:
        """Video id -> text of the first query that found it (earliest, then lowest query id)."""

        def read(conn: Any) -> dict[str, str]:
            rows = conn.execute(
                select(query_videos.c.video_id, queries.c.text)
                .join(queries, queries.c.id == query_videos.c.query_id)
                .order_by(query_videos.c.first_seen_at, query_videos.c.query_id))
            out: dict[str, str] = {}
            for row in rows:
                out.setdefault(row.video_id, row.text)
            return out

        result: dict[str, str] = self._run("reading queries of videos", read)
        return result

    def videos_without_vector(self, model: str) -> list[tuple[str, str | None]]:
        """(video id, thumbnail cache key or None) of videos with no vector for ``model``."""

        def read(conn: Any) -> list[tuple[str, str | None]]:
            has_vector = select(embeddings.c.video_id).where(embeddings.c.model == model)
            rows = conn.execute(select(videos.c.video_id, videos.c.thumbnail_sha256)
                                .where(videos.c.video_id.not_in(has_vector))
                                .order_by(videos.c.video_id))
            return [(r.video_id, r.thumbnail_sha256) for r in rows]

        result: list[tuple[str, str | None]] = self._run("reading videos to embed", read)
        return result

    def vector_counts(self) -> dict[str, int]:
        """Number of stored vectors per model id."""

        def read(conn: Any) -> dict[str, int]:
            rows = conn.execute(select(embeddings.c.model, func.count())
                                .group_by(embeddings.c.model))
            return {str(model): int(count) for model, count in rows}

        result: dict[str, int] = self._run("counting vectors per model", read)
        return result

    def query_counts(self) -> list[tuple[str, int]]:
        """(query text, number of videos it found), most videos first (for browsing)."""

        def read(conn: Any) -> list[tuple[str, int]]:
            rows = conn.execute(
                select(queries.c.text, func.count(query_videos.c.video_id).label("n"))
                .join(query_videos, query_videos.c.query_id == queries.c.id, isouter=True)
                .group_by(queries.c.id).order_by(func.count(query_videos.c.video_id).desc(),
                                                 queries.c.text))
            return [(str(r.text), int(r.n)) for r in rows]

        result: list[tuple[str, int]] = self._run("reading queries", read)
        return result

    def page_of_videos(self, query: str | None, offset: int,
                       limit: int) -> tuple[int, list[str]]:
        """(total, video ids of one page), newest fetch first; only ``query``'s when given."""

        def read(conn: Any) -> tuple[int, list[str]]:
            chosen = select(videos.c.video_id, videos.c.fetched_at)
            if query is not None:
                chosen = (chosen.join(query_videos, query_videos.c.video_id == videos.c.video_id)
                          .join(queries, queries.c.id == query_videos.c.query_id)
                          .where(queries.c.text == query))
            inner = chosen.subquery()
            total = int(conn.execute(select(func.count()).select_from(inner)).scalar_one())
            rows = conn.execute(select(inner.c.video_id).order_by(
                inner.c.fetched_at.desc(), inner.c.video_id).offset(offset).limit(limit))
            return total, [str(r.video_id) for r in rows]

        result: tuple[int, list[str]] = self._run("reading a page of videos", read)
        return result

    # -- writes ---------------------------------------------------------------

    def add_vectors(self, video_ids: Sequence[str], vectors: np.ndarray,
                    model: str) -> np.ndarray:
        """Store vectors of videos already stored (metadata untouched); return row ids.

        A vector already stored for the same video and model is kept (its id is returned).
        """
        if len(video_ids) != len(vectors):
            raise StoreError("video ids and vectors differ in length")
        dim = int(vectors.shape[1]) if len(vectors) else 0

        def write(conn: Any) -> np.ndarray:
            serialise_embedding_inserts(conn)  # row ids commit in order (indexer.store.serialise)
            now = self._clock()
            have = {r.video_id: int(r.id) for chunk in in_chunks(list(video_ids))
                    for r in conn.execute(select(embeddings.c.video_id, embeddings.c.id).where(
                        embeddings.c.video_id.in_(chunk), embeddings.c.model == model))}
            out = np.empty(len(video_ids), dtype=np.int64)
            for i, (video_id, vector) in enumerate(zip(video_ids, vectors, strict=True)):
                if video_id not in have:
                    have[video_id] = int(conn.execute(insert(embeddings).values(
                        video_id=video_id, model=model, dim=dim, vector=_vector_bytes(vector),
                        created_at=now)).inserted_primary_key[0])
                out[i] = have[video_id]
            return out

        result: np.ndarray = self._run("storing vectors", write)
        return result

    def query_id(self, text: str) -> int:
        """Id of a search query, recorded on first use."""

        def write(conn: Any) -> int:
            find = select(queries.c.id).where(queries.c.text == text)
            found = conn.execute(find).scalar()
            if found is None:  # another worker may record the same text at the same moment
                conn.execute(insert_new(conn, queries, ["text"]).values(
                    text=text, created_at=self._clock()))
                found = conn.execute(find).scalar_one()
            return int(found)

        result: int = self._run("recording a query", write)
        return result

    def link_query(self, query_id: int, video_ranks: Sequence[tuple[str, int]]) -> None:
        """Record that a query found these stored videos (existing links are kept)."""
        if not video_ranks:
            return

        def write(conn: Any) -> None:
            ids = [v for v, _ in video_ranks]
            present = {r[0] for chunk in in_chunks(ids) for r in conn.execute(
                select(query_videos.c.video_id).where(query_videos.c.query_id == query_id,
                                                      query_videos.c.video_id.in_(chunk)))}
            stored = {r[0] for chunk in in_chunks(ids) for r in conn.execute(
                select(videos.c.video_id).where(videos.c.video_id.in_(chunk)))}
            now = self._clock()
            rows = [{"query_id": query_id, "video_id": v, "first_seen_at": now, "rank": rank}
                    for v, rank in dict(video_ranks).items() if v in stored and v not in present]
            if rows:  # another worker may link the same pair at the same moment
                conn.execute(insert_new(conn, query_videos, ["query_id", "video_id"]), rows)

        self._run("linking a query to videos", write)

    def add_embedded(self, metas: Sequence[VideoMeta], vectors: np.ndarray,
                     model: str) -> np.ndarray:
        """Store videos with their L2-normalised vectors; return the new row ids (int64).

        A video already stored keeps its row and gets its metadata refreshed; a vector already
        stored for the same model is not written twice (its id is returned instead).
        """
        if len(metas) != len(vectors):
            raise StoreError("metadata and vectors differ in length")
        dim = int(vectors.shape[1]) if len(vectors) else 0

        def write(conn: Any) -> np.ndarray:
            serialise_embedding_inserts(conn)  # row ids commit in order (indexer.store.serialise)
            now = self._clock()
            ids = [m.video_id for m in metas]
            have_video = {r[0] for chunk in in_chunks(ids) for r in conn.execute(
                select(videos.c.video_id).where(videos.c.video_id.in_(chunk)))}
            have_vector = {r.video_id: int(r.id) for chunk in in_chunks(ids) for r in conn.execute(
                select(embeddings.c.video_id, embeddings.c.id).where(
                    embeddings.c.video_id.in_(chunk), embeddings.c.model == model))}
            # New rows go in with one statement each for videos and vectors (executemany),
            # not one built per row; rows already stored are updated one by one (rare).
            new_videos: dict[str, dict[str, Any]] = {}
            new_vectors: dict[str, bytes] = {}
            for meta, vector in zip(metas, vectors, strict=True):
                values = {
                    "source": meta.source, "title": meta.title, "description": meta.description,
                    "channel_id": meta.channel_id, "channel_title": meta.channel_title,
                    "published_at": meta.published_at, "thumbnail_url": meta.thumbnail_url,
                    "fetched_at": now,
                }
                if meta.thumbnail_sha256:
                    values["thumbnail_sha256"] = meta.thumbnail_sha256
                if meta.video_id in have_video:
                    conn.execute(update(videos).where(videos.c.video_id == meta.video_id)
                                 .values(**values))
                elif meta.video_id in new_videos:  # twice in one batch: the later one wins
                    new_videos[meta.video_id].update(values)
                else:
                    new_videos[meta.video_id] = {"video_id": meta.video_id, "created_at": now,
                                                 "thumbnail_sha256": None, **values}
                if meta.video_id not in have_vector and meta.video_id not in new_vectors:
                    new_vectors[meta.video_id] = _vector_bytes(vector)
            if new_videos:
                conn.execute(insert(videos), list(new_videos.values()))
            if new_vectors:
                rows = conn.execute(
                    insert(embeddings).returning(embeddings.c.id, sort_by_parameter_order=True),
                    [{"video_id": video_id, "model": model, "dim": dim, "vector": vector,
                      "created_at": now} for video_id, vector in new_vectors.items()])
                have_vector.update(zip(new_vectors, (int(r[0]) for r in rows), strict=True))
            return np.array([have_vector[meta.video_id] for meta in metas], dtype=np.int64)

        result: np.ndarray = self._run("storing videos", write)
        return result

    def start_run(self, kind: str, owner: ProcessIdentity | None = None) -> int:
        """Record the start of an ingest run by ``owner`` (default: this process); its id."""
        who = owner or this_process()
        now = self._clock()
        value = self._run("recording a run", lambda conn: conn.execute(insert(ingest_runs).values(
            kind=kind, started_at=now, status="running", host=who.host, pid=who.pid,
            process_start=who.start, heartbeat_at=now)).inserted_primary_key[0])
        return int(value)

    def heartbeat_run(self, run_id: int) -> None:
        """Record that the run's process is still alive (read by ``indexer.store.history``)."""
        self._run("recording a run", lambda conn: conn.execute(
            update(ingest_runs).where(ingest_runs.c.id == run_id).values(
                heartbeat_at=self._clock())))

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        """Record how a run ended and its summary."""
        self._run("recording a run", lambda conn: conn.execute(
            update(ingest_runs).where(ingest_runs.c.id == run_id).values(
                finished_at=self._clock(), status=status, summary=summary)))
