"""web chat: where an interaction's answer came from, and its token uncertainty summary

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; it is a no-op elsewhere.
    with op.batch_alter_table("interactions") as batch:
        # Every stored row so far came from a phone.
        batch.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="phone")
        )
        batch.add_column(sa.Column("uncertainty", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("uncertainty")
        batch.drop_column("source")
