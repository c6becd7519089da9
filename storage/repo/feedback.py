"""Feedback batches: idempotent bulk insert of interactions keyed by their client UUID."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import FeedbackBatch, Interaction, utcnow


@dataclass(frozen=True)
class BatchResult:
    """What one upload stored: its batch id, how many rows were new and how many repeats."""

    batch_id: uuid.UUID
    accepted: int
    duplicates: int


def insert_feedback_batch(
    *,
    session: Session,
    device_id: str,
    interactions: Iterable[Mapping[str, Any]],
    client_timestamp: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    received_at: datetime | None = None,
) -> BatchResult:
    """Store a batch; ids already stored (or repeated in the batch) count as duplicates.

    One multi-row INSERT .. ON CONFLICT (id) DO NOTHING RETURNING id: concurrent uploads of
    overlapping ids are safe on SQLite and PostgreSQL, and the returned ids are exactly the
    rows this call stored. Each mapping holds Interaction columns (id, model_name, ...).
    """
    batch_id = batch_id or uuid.uuid4()
    received_at = received_at or utcnow()
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    total = 0
    for item in interactions:
        total += 1
        if item["id"] not in rows:  # first occurrence wins; later repeats are duplicates
            row = dict(item)
            row.update(device_id=device_id, batch_id=batch_id, received_at=received_at)
            rows[item["id"]] = row
    session.add(
        FeedbackBatch(
            id=batch_id,
            device_id=device_id,
            client_timestamp=client_timestamp,
            received_at=received_at,
        )
    )
    session.flush()
    accepted = 0
    if rows:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(Interaction)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Interaction.id)
        )
        # Sorted ids: concurrent batches take their row locks in one order, so overlapping
        # uploads wait for each other on PostgreSQL instead of deadlocking.
        ordered = [rows[key] for key in sorted(rows)]
        accepted = len(session.execute(stmt, ordered).all())
    result = BatchResult(batch_id=batch_id, accepted=accepted, duplicates=total - accepted)
    session.execute(
        update(FeedbackBatch)
        .where(FeedbackBatch.id == batch_id)
        .values(accepted=result.accepted, duplicates=result.duplicates)
    )
    return result


def interaction_ids(*, session: Session, device_id: str | None = None) -> set[uuid.UUID]:
    """The ids of stored interactions, optionally of one device."""
    query = select(Interaction.id)
    if device_id is not None:
        query = query.where(Interaction.device_id == device_id)
    return set(session.scalars(query))


def count_interactions(*, session: Session) -> int:
    """How many interactions are stored."""
    return session.scalar(select(func.count()).select_from(Interaction)) or 0
