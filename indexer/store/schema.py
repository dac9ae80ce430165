"""SQLAlchemy table definitions; Alembic revisions in migrations/ own the real schema."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "embeddings",
    "gone_videos",
    "ingest_runs",
    "metadata",
    "queries",
    "query_cursors",
    "query_videos",
    "quota_ledger",
    "videos",
    "watch_items",
    "watch_matches",
    "work_claims",
]

# Constraint names must be stable so that migrations (batch mode on SQLite) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

videos = Table(
    "videos",
    metadata,
    Column("video_id", String(64), primary_key=True),
    Column("source", String(16), nullable=False),  # "youtube" or "file"
    Column("title", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("channel_id", String(64), nullable=False, default=""),
    Column("channel_title", Text, nullable=False, default=""),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("thumbnail_url", Text, nullable=False, default=""),
    Column("thumbnail_sha256", String(64), nullable=True),  # key in the thumbnail cache
    # videos.list details (revision 0003); NULL until enriched, counts NULL when hidden
    Column("duration", String(32), nullable=True),  # ISO 8601, e.g. PT4M13S
    Column("duration_seconds", Integer, nullable=True),
    Column("view_count", BigInteger, nullable=True),
    Column("like_count", BigInteger, nullable=True),
    Column("comment_count", BigInteger, nullable=True),
    Column("tags", JSON, nullable=True),
    Column("category_id", String(16), nullable=True),
    Column("default_language", String(32), nullable=True),
    Column("details_fetched_at", DateTime(timezone=True), nullable=True),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

queries = Table(
    "queries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

query_videos = Table(
    "query_videos",
    metadata,
    Column("query_id", Integer, ForeignKey("queries.id", ondelete="CASCADE"), primary_key=True),
    Column("video_id", String(64), ForeignKey("videos.video_id", ondelete="CASCADE"),
           primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("rank", Integer, nullable=True),  # position in the result list when first seen
)

# The integer id is the FAISS id, never reused after a delete: AUTOINCREMENT on SQLite, a
# sequence (SERIAL) on PostgreSQL. Inserts are serialised (indexer.store.serialise), so ids
# commit in order.
embeddings = Table(
    "embeddings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("video_id", String(64), ForeignKey("videos.video_id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("model", String(64), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian, L2-normalised
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("video_id", "model", name="uq_embeddings_video_id_model"),
    sqlite_autoincrement=True,
)

ingest_runs = Table(
    "ingest_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # "search" or "files"
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(16), nullable=False),  # running, done, failed, quota
    Column("summary", JSON, nullable=True),
    # The process running it (see indexer.process) and when it last said it was alive:
    # a "running" run whose process is gone is shown as interrupted.
    Column("host", String(128), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("process_start", String(80), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
)

# Spent API quota per Pacific-time day and bucket ("search": search.list calls, "units": the
# rest). Charged with one conditional UPDATE before each call, so concurrent workers never
# overspend (revision 0003).
quota_ledger = Table(
    "quota_ledger",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in America/Los_Angeles
    Column("bucket", String(16), primary_key=True),
    Column("used", Integer, nullable=False, default=0),
    Column("exhausted_at", DateTime(timezone=True), nullable=True),  # the API said quotaExceeded
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Where each scheduled query stands: the page token to resume from and its pass (revision 0003).
query_cursors = Table(
    "query_cursors",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of the query text and search parameters
    Column("query_id", Integer, ForeignKey("queries.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("params", JSON, nullable=False),  # parameters of the current pass, as sent
    Column("page_token", Text, nullable=True),  # next page of the current pass; NULL: none open
    Column("pass_pages", Integer, nullable=False, default=0),  # pages read in the current pass
    Column("pages_total", Integer, nullable=False, default=0),
    Column("passes_done", Integer, nullable=False, default=0),
    Column("pass_done_at", DateTime(timezone=True), nullable=True),
    Column("last_fetched_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Video ids YouTube no longer serves: the thumbnail host answered 404, or videos.list left
# the id out of its answer. A stored video keeps its row and vector here until pruned;
# an id list skips these ids instead of downloading them again (revision 0004).
gone_videos = Table(
    "gone_videos",
    metadata,
    Column("video_id", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("noted_at", DateTime(timezone=True), nullable=False),
    # The prune mark: when a refresh first found videos.list leaving the id out of a plausible
    # answer; NULL for other records. ``refresh --prune`` deletes a stored video only when a
    # refresh at least a day later finds it missing again (revision 0006, indexer.ingest.enrich).
    Column("missing_since", DateTime(timezone=True), nullable=True),
)

# Leases on shared work: a query being read, a video being fetched and embedded. A worker
# claims a key with one INSERT ... ON CONFLICT DO UPDATE that succeeds only where no live
# lease exists, renews its own while it works and deletes them when done; a killed worker's
# leases expire (revision 0005, indexer.ingest.claims).
work_claims = Table(
    "work_claims",
    metadata,
    Column("key", String(200), primary_key=True),  # e.g. "video:<model>:<id>", "query:<key>"
    Column("owner", String(128), nullable=False, index=True),  # host:pid:random of a run
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Watched thumbnails: a stored vector each (a corpus video's, a video thumbnail embedded on the
# fly, or an image's) with the score at or above which a new video is its re-upload
# (revision 0008, indexer.store.watchlist). Ids are never reused, so (count, highest id)
# changes whenever the list does.
watch_items = Table(
    "watch_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "video" or "image"
    Column("source", Text, nullable=False),  # the video id, image path or image URL as given
    Column("video_id", String(64), nullable=True),  # the watched video, never its own match
    Column("model", String(64), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian, L2-normalised
    Column("threshold", Float, nullable=False),
    Column("thumbnail_sha256", String(64), nullable=True),  # the image in the thumbnail cache
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# Re-uploads found: each (watched item, video) pair once, whoever stored the video, with the
# run that found it (NULL: found by ``watch add`` searching the corpus). The video id is kept
# without a foreign key, so a match outlives a pruned video (revision 0008).
watch_matches = Table(
    "watch_matches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watch_id", Integer, ForeignKey("watch_items.id", ondelete="CASCADE"),
           nullable=False),
    Column("video_id", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("run_id", Integer, nullable=True, index=True),
    Column("found_at", DateTime(timezone=True), nullable=False, index=True),
    UniqueConstraint("watch_id", "video_id", name="uq_watch_matches_watch_id_video_id"),
    sqlite_autoincrement=True,
)
