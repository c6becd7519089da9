"""adapters and agents: an optional agent on interactions and versions, runtime metadata

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; it is a no-op elsewhere.
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("agent", sa.String(length=64), nullable=True))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("agent", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("runtime", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("runtime")
        batch.drop_column("agent")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("agent")
