"""Feedback batches: idempotent bulk insert of interactions keyed by their client UUID."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from storage.models import FeedbackBatch, Interaction, utcnow

# Client-supplied columns, in statement order; device, batch and arrival time are added here.
FIELDS = (
    "id",
    "model_name",
    "model_version",
    "prompt",
    "response",
    "correction",
    "rating",
    "latency_ms",
    "category",
    "client_created_at",
)
_COLUMNS = (*FIELDS, "device_id", "batch_id", "received_at")
_ROWS_PER_STATEMENT = 500  # 13 params a row: well under SQLite's and PostgreSQL's limits

_BATCH: Any = FeedbackBatch.__table__
# Built once: the per-request statements then only hit SQLAlchemy's compiled cache.
_BATCH_INSERT = insert(_BATCH)
_BATCH_COUNTS = (
    update(_BATCH)
    .where(_BATCH.c.id == bindparam("batch_id"))
    .values(accepted=bindparam("accepted"), duplicates=bindparam("duplicates"))
)

_Processor = Callable[[Any], Any] | None
_plans: dict[tuple[str, str], tuple[str, str, list[_Processor]]] = {}


@dataclass(frozen=True)
class BatchResult:
    """What one upload stored: its batch id, how many rows were new and how many repeats."""

    batch_id: uuid.UUID
    accepted: int
    duplicates: int


def _as_int(value: uuid.UUID) -> int:
    return value.int


def _plan(dialect: Dialect) -> tuple[str, str, list[_Processor]]:
    """(statement head, one row's placeholders, per-column bind processors) for a dialect."""
    key = (dialect.name, dialect.driver)
    if key not in _plans:
        table: Any = Interaction.__table__
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # The column types' own processors: rows are stored exactly as the ORM would.
        processors = [table.c[name].type._cached_bind_processor(dialect) for name in _COLUMNS]
        head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in _COLUMNS)}) VALUES "
        _plans[key] = (head, "(" + ", ".join([mark] * len(_COLUMNS)) + ")", processors)
    return _plans[key]


def _insert_new(session: Session, rows: list[tuple[Any, ...]], tail: tuple[Any, ...]) -> int:
    """INSERT .. ON CONFLICT (id) DO NOTHING RETURNING id over `rows`; how many were new.

    Built as one multi-row statement on the driver connection: SQLAlchemy's per-row
    parameter handling cost more than the insert itself (see bench/ingest.py).
    """
    conn = session.connection()
    head, placeholders, processors = _plan(conn.dialect)
    n = len(FIELDS)
    # The per-batch columns are converted once; per row only the columns that need it.
    tail = tuple(v if p is None else p(v) for v, p in zip(tail, processors[n:], strict=True))
    active = [(i, p) for i, p in enumerate(processors[:n]) if p is not None]
    accepted = 0
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for row in chunk:
            values = list(row)
            for i, proc in active:
                values[i] = proc(values[i])
            params += values
            params += tail
        rows_sql = ", ".join([placeholders] * len(chunk))
        sql = f"{head}{rows_sql} ON CONFLICT (id) DO NOTHING RETURNING id"
        accepted += len(conn.exec_driver_sql(sql, tuple(params)).fetchall())
    return accepted


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

    Each mapping holds the FIELDS columns (missing optional ones are NULL). One INSERT ..
    ON CONFLICT (id) DO NOTHING RETURNING: concurrent uploads of overlapping ids are safe
    on SQLite and PostgreSQL, and the returned ids are exactly the rows this call stored.
    """
    batch_id = batch_id or uuid.uuid4()
    received_at = received_at or utcnow()
    rows: dict[uuid.UUID, tuple[Any, ...]] = {}
    total = 0
    for item in interactions:
        total += 1
        if item["id"] not in rows:  # first occurrence wins; later repeats are duplicates
            rows[item["id"]] = tuple([item.get(name) for name in FIELDS])
    session.execute(
        _BATCH_INSERT,
        {
            "id": batch_id,
            "device_id": device_id,
            "client_timestamp": client_timestamp,
            "received_at": received_at,
            "accepted": 0,
            "duplicates": 0,
        },
    )
    # Sorted ids: concurrent batches take their row locks in one order, so overlapping
    # uploads wait for each other on PostgreSQL instead of deadlocking.
    accepted = (
        _insert_new(
            session,
            [rows[k] for k in sorted(rows, key=_as_int)],
            (device_id, batch_id, received_at),
        )
        if rows
        else 0
    )
    result = BatchResult(batch_id=batch_id, accepted=accepted, duplicates=total - accepted)
    session.execute(
        _BATCH_COUNTS,
        {"batch_id": batch_id, "accepted": result.accepted, "duplicates": result.duplicates},
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
