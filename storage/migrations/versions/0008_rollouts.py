"""staged rollouts: a canary version on a share of a student's devices

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("student", sa.String(128), nullable=False),
        sa.Column("model_version_id", BigId, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rollouts_student", "rollouts", ["student"])


def downgrade() -> None:
    op.drop_index("ix_rollouts_student", table_name="rollouts")
    op.drop_table("rollouts")
