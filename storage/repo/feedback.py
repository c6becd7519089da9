"""Feedback batches: idempotent bulk insert keyed by client UUID, last-write-wins updates."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from storage.models import (
    REVIEW_SOURCE,
    ErasedRecord,
    FeedbackBatch,
    Interaction,
    InteractionRevision,
    utcnow,
)


class FeedbackRow(NamedTuple):
    """One interaction to store, its fields in statement order; device and batch come apart.

    The insert binds it as it is; the defaults of optional fields live here, once.
    """

    id: uuid.UUID
    model_name: str
    model_version: str
    prompt: str
    response: str
    client_created_at: datetime
    correction: str | None = None
    rating: int | None = None
    latency_ms: int | None = None
    category: str | None = None
    agent: str | None = None
    client_updated_at: datetime | None = None
    source: str = "phone"  # rows come from phones unless they say otherwise
    uncertainty: dict[str, Any] | None = None
    consent: str = "train"  # train / evaluate; "none" rows are counted, never stored


FIELDS = FeedbackRow._fields
_COLUMNS = (*FIELDS, "device_id", "batch_id", "received_at")
_ROWS_PER_STATEMENT = 500  # 18 params a row: well under SQLite's and PostgreSQL's limits

_BATCH: Any = FeedbackBatch.__table__
# Built once: the per-request statements then only hit SQLAlchemy's compiled cache.
_BATCH_INSERT = insert(_BATCH)
_BATCH_COUNTS = (
    update(_BATCH)
    .where(_BATCH.c.id == bindparam("batch_id"))
    .values(
        accepted=bindparam("accepted"),
        duplicates=bindparam("duplicates"),
        updated=bindparam("updated"),
        not_stored=bindparam("not_stored"),
    )
)

_Processor = Callable[[Any], Any] | None
_plans: dict[tuple[str, str], tuple[str, str, list[_Processor]]] = {}


@dataclass(frozen=True)
class BatchResult:
    """What one upload stored: its batch id, new rows, updated rows and repeats."""

    batch_id: uuid.UUID
    accepted: int
    duplicates: int
    updated: int = 0
    not_stored: int = 0  # consent "none", or erased before: counted, never stored


def _as_int(value: uuid.UUID) -> int:
    return value.int


def _as_uuid(value: Any) -> uuid.UUID:
    """A driver's uuid value (uuid.UUID on PostgreSQL, 32 hex chars on SQLite)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


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


def _insert_new(
    session: Session, rows: list[FeedbackRow], tail: tuple[Any, ...], *, want_ids: bool
) -> tuple[int, list[Any]]:
    """INSERT .. ON CONFLICT (id) DO NOTHING over `rows`: (rows stored, their ids if wanted).

    Built as one multi-row statement on the driver connection: SQLAlchemy's per-row
    parameter handling cost more than the insert itself (see bench/ingest.py).
    """
    conn = session.connection()
    head, placeholders, processors = _plan(conn.dialect)
    n = len(FIELDS)
    # The per-batch columns are converted once; per row only the columns that need it.
    tail = tuple(v if p is None else p(v) for v, p in zip(tail, processors[n:], strict=True))
    # NULLs are converted once: a JSON column's processor would serialize None on every row.
    active = [(i, p, p(None)) for i, p in enumerate(processors[:n]) if p is not None]

    def stored(row: tuple[Any, ...]) -> list[Any]:
        values = list(row)
        for i, proc, null in active:
            value = values[i]
            values[i] = null if value is None else proc(value)
        return values + list(tail)

    if conn.dialect.driver == "psycopg":
        return _insert_new_pipelined(
            conn, head + placeholders, [stored(r) for r in rows], want_ids=want_ids
        )
    count, ids = 0, []
    # RETURNING is asked for only when the ids are needed: it hands back a row per stored
    # interaction, one sqlite3_step each (pysqlite drops and retakes the GIL around every
    # step) and a result row each. The row count (sqlite3_changes) needs neither: the
    # server's CPU per interaction fell from 122 to 106 µs (bench/ingest.py, round 0).
    returning = " RETURNING id" if want_ids else ""
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for row in chunk:
            params += stored(row)
        rows_sql = ", ".join([placeholders] * len(chunk))
        sql = f"{head}{rows_sql} ON CONFLICT (id) DO NOTHING{returning}"
        result = conn.exec_driver_sql(sql, tuple(params))
        if want_ids:
            ids += [r[0] for r in result.fetchall()]
        else:
            count += result.rowcount
    return (len(ids) if want_ids else count), ids


def _insert_new_pipelined(
    conn: Any, insert_one_row: str, rows: list[list[Any]], *, want_ids: bool
) -> tuple[int, list[Any]]:
    """psycopg: one short statement per row, sent together in pipeline mode; as _insert_new.

    psycopg caches the parse of a statement only up to 50 parameters, so a multi-row
    statement (17 per row) was parsed again on every upload: 30% of the service's CPU
    (py-spy --gil under bench/ingest.py). A one-row statement is parsed once, prepared on
    the server after a few uploads, and executemany pipelines the rows in one round trip.
    """
    sql = f"{insert_one_row} ON CONFLICT (id) DO NOTHING" + (" RETURNING id" if want_ids else "")
    accepted: list[Any] = []
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.executemany(sql, rows, returning=want_ids)
        if not want_ids:
            return cursor.rowcount, []  # psycopg sums the row counts of an executemany
        while True:
            accepted += [r[0] for r in cursor.fetchall()]
            if not cursor.nextset():
                break
    return len(accepted), accepted


def record_revision(
    session: Session,
    *,
    interaction_id: uuid.UUID,
    row: Any,
    device_id: str,
    replaced_at: datetime,
    batch_id: uuid.UUID,
) -> None:
    """Keep a row's rating and correction, as they were, before an update or a review
    replaces them (`row`: those columns and `seq`, as selected from interactions)."""
    session.execute(
        insert(InteractionRevision).values(
            interaction_id=interaction_id,
            device_id=device_id,
            previous_seq=row.seq,
            rating=row.rating,
            correction=row.correction,
            correction_source=row.correction_source,
            reviewed_by=row.reviewed_by,
            client_updated_at=row.client_updated_at,
            received_at=row.received_at,
            replaced_at=replaced_at,
            replaced_by_batch=batch_id,
        )
    )


def next_seq(session: Session) -> Any:
    """An SQL expression for a fresh arrival seq (the row's sequence; max+1 on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return text("nextval(pg_get_serial_sequence('interactions', 'seq'))")
    # SQLite writers hold the database lock (BEGIN IMMEDIATE), so max+1 cannot race.
    return select(func.max(Interaction.seq) + 1).scalar_subquery()


def _apply_updates(
    session: Session,
    *,
    device_id: str,
    batch_id: uuid.UUID,
    received_at: datetime,
    candidates: dict[uuid.UUID, FeedbackRow],
) -> int:
    """Apply re-sent rows with a later client_updated_at; how many rows changed.

    Last write wins by the client's clock: only the device that stored a row may change its
    rating and correction, the old values go to the audit table, and the row takes a new
    seq and arrival time so the next snapshot reads it as new. A reviewer's correction is
    kept by an update that carries none (the device never saw it), replaced by one that does.
    """
    stored = session.execute(
        select(
            Interaction.seq,
            Interaction.id,
            Interaction.device_id,
            Interaction.rating,
            Interaction.correction,
            Interaction.correction_source,
            Interaction.reviewed_by,
            Interaction.client_created_at,
            Interaction.client_updated_at,
            Interaction.received_at,
        )
        .where(Interaction.id.in_(list(candidates)))
        .with_for_update()
    ).all()
    changed = 0
    for old in stored:
        new = candidates[old.id]
        newer = new.client_updated_at > (old.client_updated_at or old.client_created_at)
        keep_review = new.correction is None and old.correction_source == REVIEW_SOURCE
        correction = old.correction if keep_review else new.correction
        same = (new.rating, correction) == (old.rating, old.correction)
        if old.device_id != device_id or not newer or same:
            continue
        record_revision(
            session,
            interaction_id=old.id,
            row=old,
            device_id=device_id,
            replaced_at=received_at,
            batch_id=batch_id,
        )
        session.execute(
            update(Interaction)
            .where(Interaction.seq == old.seq)
            .values(
                seq=next_seq(session),
                rating=new.rating,
                correction=correction,
                correction_source=REVIEW_SOURCE if keep_review else None,
                reviewed_by=old.reviewed_by if keep_review else None,
                client_updated_at=new.client_updated_at,
                batch_id=batch_id,
                received_at=received_at,
            )
        )
        changed += 1
    return changed


def insert_feedback_batch(
    *,
    session: Session,
    device_id: str,
    interactions: Iterable[FeedbackRow],
    client_timestamp: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    received_at: datetime | None = None,
) -> BatchResult:
    """Store a batch; ids already stored (or repeated in the batch) count as duplicates.

    INSERT .. ON CONFLICT (id) DO NOTHING: concurrent uploads of overlapping ids are safe on
    SQLite and PostgreSQL, and its row count (or RETURNING ids) is exactly what this call
    stored. A stored id re-sent with a later `client_updated_at` by its own device is updated
    (counted in `updated`, not `duplicates`). Rows whose user consented to no use, and ids
    erased before, are counted in `not_stored` and their text is never written.
    """
    batch_id = batch_id or uuid.uuid4()
    received_at = received_at or utcnow()
    rows: dict[uuid.UUID, FeedbackRow] = {}
    total = not_stored = 0
    for row in interactions:
        if row.consent == "none":
            not_stored += 1
            continue
        total += 1
        known = rows.get(row.id)
        # First occurrence wins, unless a repeat inside the batch carries a later update.
        if known is None or (
            row.client_updated_at is not None
            and (known.client_updated_at is None or row.client_updated_at > known.client_updated_at)
        ):
            rows[row.id] = row
    erased = _erased(session, list(rows)) if rows else set()
    for record_id in erased:  # a phone re-sending what its user erased: never stored again
        del rows[record_id]
    # Each erased id counts once as not stored; a repeat of it inside the batch, as a duplicate.
    total -= len(erased)
    not_stored += len(erased)
    # Core statements on the session's connection: the ORM's execute path cost more than
    # these two one-row statements themselves (bench/ingest.py).
    conn = session.connection()
    conn.execute(
        _BATCH_INSERT,
        {
            "id": batch_id,
            "device_id": device_id,
            "client_timestamp": client_timestamp,
            "received_at": received_at,
            "accepted": 0,
            "duplicates": 0,
            "updated": 0,
            "not_stored": 0,
        },
    )
    # Only rows that carry updated_at can change a stored row: the common upload skips this.
    may_update = any(r.client_updated_at is not None for r in rows.values())
    # Sorted ids: concurrent batches take their row locks in one order, so overlapping
    # uploads wait for each other on PostgreSQL instead of deadlocking.
    accepted, new_ids = (
        _insert_new(
            session,
            [rows[k] for k in sorted(rows, key=_as_int)],
            (device_id, batch_id, received_at),
            want_ids=may_update,
        )
        if rows
        else (0, [])
    )
    updated = 0
    if may_update:
        fresh = {_as_uuid(v) for v in new_ids}
        candidates = {
            k: r for k, r in rows.items() if r.client_updated_at is not None and k not in fresh
        }
        if candidates:
            updated = _apply_updates(
                session,
                device_id=device_id,
                batch_id=batch_id,
                received_at=received_at,
                candidates=candidates,
            )
    result = BatchResult(
        batch_id=batch_id,
        accepted=accepted,
        duplicates=total - accepted - updated,
        updated=updated,
        not_stored=not_stored,
    )
    conn.execute(
        _BATCH_COUNTS,
        {
            "batch_id": batch_id,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "updated": result.updated,
            "not_stored": result.not_stored,
        },
    )
    return result


def _erased(session: Session, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `ids` an erasure tombstoned (one primary-key lookup per chunk of ids)."""
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), _ROWS_PER_STATEMENT):
        chunk = ids[start : start + _ROWS_PER_STATEMENT]
        query = select(ErasedRecord.record_id).where(ErasedRecord.record_id.in_(chunk))
        found.update(_as_uuid(v) for v in session.scalars(query))
    return found


def interaction_ids(*, session: Session, device_id: str | None = None) -> set[uuid.UUID]:
    """The ids of stored interactions, optionally of one device."""
    query = select(Interaction.id)
    if device_id is not None:
        query = query.where(Interaction.device_id == device_id)
    return set(session.scalars(query))


def count_interactions(*, session: Session) -> int:
    """How many interactions are stored."""
    return session.scalar(select(func.count()).select_from(Interaction)) or 0
