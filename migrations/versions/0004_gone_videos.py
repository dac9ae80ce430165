"""gone videos

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:12:41.503118
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "gone_videos",
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("video_id", name=op.f("pk_gone_videos")),
    )


def downgrade() -> None:
    op.drop_table("gone_videos")
