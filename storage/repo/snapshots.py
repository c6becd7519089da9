"""Dataset snapshot rows: lookup by fingerprint, the latest one, the lineage, insertion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import DatasetSnapshot


def get_snapshot(*, session: Session, snapshot_id: int) -> DatasetSnapshot | None:
    """The snapshot with this id, None when unknown."""
    return session.get(DatasetSnapshot, snapshot_id)


def find_snapshot(*, session: Session, fingerprint: str) -> DatasetSnapshot | None:
    """The snapshot with this fingerprint, None when none was built."""
    return session.scalar(select(DatasetSnapshot).where(DatasetSnapshot.fingerprint == fingerprint))


def latest_snapshot(*, session: Session) -> DatasetSnapshot | None:
    """The snapshot with the highest watermark (newest on ties), None before the first."""
    query = select(DatasetSnapshot).order_by(
        DatasetSnapshot.watermark.desc(), DatasetSnapshot.id.desc()
    )
    return session.scalars(query.limit(1)).first()


def list_snapshots(*, session: Session) -> list[DatasetSnapshot]:
    """Every snapshot, oldest first."""
    return list(session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id)))


def add_snapshot(
    *,
    session: Session,
    fingerprint: str,
    watermark: int,
    path: str,
    code_version: str,
    config: dict[str, Any],
    split_sizes: dict[str, Any],
    filter_stats: dict[str, Any],
    parent_id: int | None = None,
) -> DatasetSnapshot:
    """Insert a snapshot row and flush so its id is known."""
    row = DatasetSnapshot(
        fingerprint=fingerprint,
        watermark=watermark,
        path=path,
        code_version=code_version,
        config=config,
        split_sizes=split_sizes,
        filter_stats=filter_stats,
        parent_id=parent_id,
    )
    session.add(row)
    session.flush()
    return row
