"""Erasures: tombstone and delete interactions at once; files and caches follow (tasks/privacy).

The rows go in one transaction: their ids become tombstones (`erased_records`), then the
interactions and their revisions are deleted. Snapshot files and teacher cache entries
that hold the rows are handled afterwards by whoever finishes the erasure (the
`data-erasure` deployment, or `distillery data erase`), which needs the tombstones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.models import (
    DataAuditEvent,
    ErasedRecord,
    Erasure,
    FeedbackBatch,
    Interaction,
    InteractionRevision,
    utcnow,
)


@dataclass(frozen=True)
class ErasureScope:
    """Which interactions: one device's, all received before a time, or both at once."""

    device_id: str | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        if self.device_id is None and self.before is None:
            raise ValueError("an erasure needs a device, a date, or both")

    @property
    def kind(self) -> str:
        """device, before, or device+before."""
        return "+".join(k for k, v in (("device", self.device_id), ("before", self.before)) if v)

    def describe(self) -> str:
        """One line naming the scope, for the audit trail."""
        parts = []
        if self.device_id is not None:
            parts.append(f"device {self.device_id}")
        if self.before is not None:
            parts.append(f"received before {self.before.isoformat(timespec='seconds')}")
        return ", ".join(parts)

    def where(self) -> ColumnElement[bool]:
        """The interactions it covers, as a WHERE clause."""
        clauses = []
        if self.device_id is not None:
            clauses.append(Interaction.device_id == self.device_id)
        if self.before is not None:
            clauses.append(Interaction.received_at < self.before)
        return clauses[0] if len(clauses) == 1 else clauses[0] & clauses[1]


def count_scope(*, session: Session, scope: ErasureScope) -> dict[str, int]:
    """What an erasure of `scope` would remove now: interactions (phone and web chat) and
    revisions. The dry run's answer."""
    query = select(Interaction.source, func.count()).where(scope.where())
    by_source = dict(session.execute(query.group_by(Interaction.source)).tuples().all())
    revisions = session.scalar(
        select(func.count())
        .select_from(InteractionRevision)
        .where(InteractionRevision.interaction_id.in_(select(Interaction.id).where(scope.where())))
    )
    return {
        "interactions": sum(by_source.values()),
        "chat_turns": by_source.get("web", 0),
        "revisions": revisions or 0,
    }


def erase_rows(
    *, session: Session, scope: ErasureScope, actor: str, reason: str = "", action: str = "erase"
) -> Erasure:
    """Tombstone and delete the interactions in `scope` and their revisions; the erasure row
    (status pending until files and caches are done) is returned with the counts."""
    counts = count_scope(session=session, scope=scope)
    erasure = Erasure(
        id=uuid.uuid4().hex,
        scope=scope.kind,
        device_id=scope.device_id,
        before=scope.before,
        actor=actor[:64],
        reason=reason,
        status="pending",
        counts=counts,
        versions=[],
    )
    session.add(erasure)
    session.flush()
    # Server-side INSERT .. SELECT: millions of ids never pass through Python.
    already = exists().where(ErasedRecord.record_id == Interaction.id)
    session.execute(
        insert(ErasedRecord).from_select(
            ["record_id", "erasure_id"],
            select(Interaction.id, literal(erasure.id)).where(scope.where(), ~already),
        )
    )
    mine = select(ErasedRecord.record_id).where(ErasedRecord.erasure_id == erasure.id)
    session.execute(delete(InteractionRevision).where(InteractionRevision.interaction_id.in_(mine)))
    session.execute(delete(Interaction).where(Interaction.id.in_(mine)))
    record_event(
        session=session,
        action=action,
        actor=actor,
        subject=f"erasure {erasure.id}: {scope.describe()}" + (f" ({reason})" if reason else ""),
        counts=counts,
    )
    return erasure


def get_erasure(*, session: Session, erasure_id: str) -> Erasure | None:
    """The erasure with this id, None when unknown."""
    return session.get(Erasure, erasure_id)


def pending_erasures(*, session: Session) -> list[Erasure]:
    """Erasures whose files and caches are still to be done, oldest first."""
    query = select(Erasure).where(Erasure.status == "pending").order_by(Erasure.requested_at)
    return list(session.scalars(query))


def list_erasures(*, session: Session, limit: int = 50) -> list[Erasure]:
    """The newest erasures first."""
    return list(session.scalars(select(Erasure).order_by(Erasure.requested_at.desc()).limit(limit)))


def erased_ids(*, session: Session, erasure_id: str | None = None) -> set[str]:
    """Tombstoned interaction ids (as snapshot files spell them: str(uuid)), of one erasure
    or of all."""
    query = select(ErasedRecord.record_id)
    if erasure_id is not None:
        query = query.where(ErasedRecord.erasure_id == erasure_id)
    return {
        str(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))) for v in session.scalars(query)
    }


def finish_erasure(
    *, session: Session, erasure_id: str, counts: dict[str, Any], versions: list[dict[str, Any]]
) -> Erasure:
    """Mark an erasure done with what its file step removed and the versions it touched."""
    erasure = session.get(Erasure, erasure_id)
    if erasure is None:
        raise LookupError(f"unknown erasure {erasure_id}")
    erasure.counts = {**erasure.counts, **counts}
    erasure.versions = versions
    erasure.status = "done"
    erasure.finished_at = utcnow()
    return erasure


def tainted_versions(*, session: Session, student: str) -> set[int]:
    """Versions of `student` that finished erasures found trained on (or replaying) erased
    rows: the next cycle must not warm-start from them when DISTILLERY_ERASURE_RETRAIN is on."""
    done = session.scalars(select(Erasure.versions).where(Erasure.status == "done"))
    return {
        int(v["version"])
        for versions in done
        for v in versions or []
        if v.get("student") == student and not v.get("agent")
    }


def record_event(
    *, session: Session, action: str, actor: str, subject: str, counts: dict[str, Any]
) -> DataAuditEvent:
    """Add one line to the data audit trail: who did what to how many rows."""
    event = DataAuditEvent(action=action, actor=actor[:64], subject=subject, counts=counts)
    session.add(event)
    return event


def not_stored_per_day(*, session: Session, since: datetime) -> list[tuple[str, int, int]]:
    """(UTC day, interactions not stored, devices) since `since`: uploads refused by consent
    (or re-sent after an erasure), which leave only these counts behind."""
    day = func.date(FeedbackBatch.received_at)
    query = (
        select(
            day,
            func.sum(FeedbackBatch.not_stored),
            func.count(func.distinct(FeedbackBatch.device_id)),
        )
        .where(FeedbackBatch.received_at >= since, FeedbackBatch.not_stored > 0)
        .group_by(day)
        .order_by(day)
    )
    return [(str(d), int(n or 0), int(k)) for d, n, k in session.execute(query)]


def audit_events(
    *, session: Session, since: datetime | None = None, limit: int = 200
) -> list[DataAuditEvent]:
    """The audit trail, newest first."""
    query = select(DataAuditEvent).order_by(DataAuditEvent.id.desc()).limit(limit)
    if since is not None:
        query = query.where(DataAuditEvent.created_at >= since)
    return list(session.scalars(query))
