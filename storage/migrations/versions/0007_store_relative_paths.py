"""store paths relative to the artifact root: no host path in the database

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:40:00

Snapshots' and training runs' folders were recorded as this host's absolute paths, so a
worker with the store mounted elsewhere could not find them. Rows inside the artifact root
of the host that runs this migration (DISTILLERY_ARTIFACT_ROOT, else <data dir>/artifacts)
become relative to it; paths outside it stay absolute (storage.models.StorePath reads both).
"""

from __future__ import annotations

from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = {"dataset_snapshots": ("path",), "training_runs": ("output_dir", "adapter_path")}


def _rewrite(to_relative: bool) -> None:
    from storage.config import StorageSettings

    root = PurePosixPath(StorageSettings.read().resolved_artifact_root().as_posix())
    conn = op.get_bind()
    for table, columns in COLUMNS.items():
        for column in columns:
            rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
            for row_id, value in rows:
                if not value:
                    continue
                path = PurePosixPath(value)
                if to_relative and path.is_absolute() and path.is_relative_to(root):
                    new = path.relative_to(root).as_posix()
                elif not to_relative and not path.is_absolute():
                    new = (root / path).as_posix()
                else:
                    continue
                conn.execute(
                    sa.text(f"UPDATE {table} SET {column} = :new WHERE id = :id"),
                    {"new": new, "id": row_id},
                )


def upgrade() -> None:
    _rewrite(to_relative=True)


def downgrade() -> None:
    _rewrite(to_relative=False)
