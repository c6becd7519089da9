"""device enrollment status, feedback updates and their audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; it is a no-op elsewhere.
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch.add_column(
            sa.Column("status_changed_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(
            sa.Column("client_updated_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("feedback_batches") as batch:
        batch.add_column(sa.Column("updated", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "interaction_revisions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("previous_seq", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("client_updated_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaced_by_batch", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_interaction_revisions_interaction_id", "interaction_revisions", ["interaction_id"]
    )
    # The daily quota sums a device's batches of today.
    op.create_index(
        "ix_feedback_batches_device_received", "feedback_batches", ["device_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_batches_device_received", table_name="feedback_batches")
    op.drop_index("ix_interaction_revisions_interaction_id", table_name="interaction_revisions")
    op.drop_table("interaction_revisions")
    with op.batch_alter_table("feedback_batches") as batch:
        batch.drop_column("updated")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("client_updated_at")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("status_changed_at")
        batch.drop_column("status")
