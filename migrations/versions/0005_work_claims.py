"""work claims: leases of several ingest workers on queries and videos

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:40:12.118342
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "work_claims",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_work_claims")),
    )
    with op.batch_alter_table("work_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_claims_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("work_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_claims_owner"))
    op.drop_table("work_claims")
