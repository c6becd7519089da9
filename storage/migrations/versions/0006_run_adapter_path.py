"""training runs record their adapter: one source of truth for "the adapter of a run"

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs recorded before this revision keep NULL: the reader falls back to the folder
    # rule they were written under (tasks/cycle.py: run_adapter), said in its docstring.
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("adapter_path", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("adapter_path")
