"""watchlists: watched thumbnails and the re-uploads found of them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "watch_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_items")),
        sa.UniqueConstraint("name", name=op.f("uq_watch_items_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "watch_matches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["watch_id"], ["watch_items.id"],
                                name=op.f("fk_watch_matches_watch_id_watch_items"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_matches")),
        sa.UniqueConstraint("watch_id", "video_id", name="uq_watch_matches_watch_id_video_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_watch_matches_run_id"), "watch_matches", ["run_id"])
    op.create_index(op.f("ix_watch_matches_found_at"), "watch_matches", ["found_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_watch_matches_found_at"), table_name="watch_matches")
    op.drop_index(op.f("ix_watch_matches_run_id"), table_name="watch_matches")
    op.drop_table("watch_matches")
    op.drop_table("watch_items")
