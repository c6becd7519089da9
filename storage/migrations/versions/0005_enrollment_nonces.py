"""enrollment nonces: a signed registration is accepted once within its time window

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_nonces",
        sa.Column("nonce", sa.String(length=64), primary_key=True),
        sa.Column("seen_at", storage.models.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enrollment_nonces_seen_at", "enrollment_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_nonces_seen_at", table_name="enrollment_nonces")
    op.drop_table("enrollment_nonces")
