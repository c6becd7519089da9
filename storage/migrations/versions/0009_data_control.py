"""users' data under their control: erasures and their tombstones, consent, the data audit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place; it is a no-op elsewhere.
    with op.batch_alter_table("interactions") as batch:
        # Rows stored so far were uploaded before consent existed: any use, as before.
        batch.add_column(
            sa.Column("consent", sa.String(length=16), nullable=False, server_default="train")
        )
    with op.batch_alter_table("feedback_batches") as batch:
        batch.add_column(sa.Column("not_stored", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.add_column(sa.Column("redactions", sa.JSON(), nullable=True))
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("before", When, nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("requested_at", When, nullable=False),
        sa.Column("finished_at", When, nullable=True),
    )
    op.create_index("ix_erasures_device_id", "erasures", ["device_id"])
    op.create_table(
        "erased_records",
        sa.Column("record_id", sa.Uuid(), primary_key=True),
        sa.Column("erasure_id", sa.String(32), sa.ForeignKey("erasures.id"), nullable=False),
    )
    op.create_index("ix_erased_records_erasure_id", "erased_records", ["erasure_id"])
    op.create_table(
        "data_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_index("ix_data_audit_created_at", "data_audit", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_data_audit_created_at", table_name="data_audit")
    op.drop_table("data_audit")
    op.drop_index("ix_erased_records_erasure_id", table_name="erased_records")
    op.drop_table("erased_records")
    op.drop_index("ix_erasures_device_id", table_name="erasures")
    op.drop_table("erasures")
    with op.batch_alter_table("dataset_snapshots") as batch:
        batch.drop_column("redactions")
    with op.batch_alter_table("feedback_batches") as batch:
        batch.drop_column("not_stored")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("consent")
