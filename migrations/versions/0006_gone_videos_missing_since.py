"""gone videos: when a refresh first found videos.list leaving the id out (the prune mark)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 22:40:03.271604
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("gone_videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("missing_since", sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gone_videos", schema=None) as batch_op:
        batch_op.drop_column("missing_since")
