"""review: a device role (reviewer), and who wrote an interaction's correction

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; it is a no-op elsewhere.
    with op.batch_alter_table("devices") as batch:
        # Every device enrolled so far is a plain user; an operator grants review.
        batch.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="user")
        )
    # Corrections stored so far were written by the users of the devices that uploaded them.
    for table in ("interactions", "interaction_revisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("correction_source", sa.String(length=16), nullable=True))
            batch.add_column(sa.Column("reviewed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("interaction_revisions", "interactions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reviewed_by")
            batch.drop_column("correction_source")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("role")
