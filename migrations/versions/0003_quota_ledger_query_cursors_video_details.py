"""quota ledger, query cursors, video details

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:36:03.009650
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "quota_ledger",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("exhausted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "bucket", name=op.f("pk_quota_ledger")),
    )
    op.create_table(
        "query_cursors",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("page_token", sa.Text(), nullable=True),
        sa.Column("pass_pages", sa.Integer(), nullable=False),
        sa.Column("pages_total", sa.Integer(), nullable=False),
        sa.Column("passes_done", sa.Integer(), nullable=False),
        sa.Column("pass_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["queries.id"],
            name=op.f("fk_query_cursors_query_id_queries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_query_cursors")),
    )
    with op.batch_alter_table("query_cursors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_query_cursors_query_id"), ["query_id"], unique=False)

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("view_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("like_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("comment_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("category_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("default_language", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("details_fetched_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("details_fetched_at")
        batch_op.drop_column("default_language")
        batch_op.drop_column("category_id")
        batch_op.drop_column("tags")
        batch_op.drop_column("comment_count")
        batch_op.drop_column("like_count")
        batch_op.drop_column("view_count")
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("duration")

    with op.batch_alter_table("query_cursors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_query_cursors_query_id"))

    op.drop_table("query_cursors")
    op.drop_table("quota_ledger")
