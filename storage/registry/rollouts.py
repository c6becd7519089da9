"""Staged rollouts: a published version on a stable share of a student's devices.

A rollout puts version V on P % of devices; the others stay on stable. A device is in the
cohort when a hash of (student, device id, rollout id) falls below P %: the same device gets
the same answer on every worker and after every restart, a new rollout draws a new cohort,
and widening from 10 % to 50 % keeps the first 10 % in. Every step (start, widen, promote,
abort) is an audit row beside the channel events, with who and why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import ChannelEvent, Rollout, utcnow
from storage.registry import channels
from storage.registry.types import RegistryError, check_student
from storage.repo import channels as channel_repo
from storage.repo import versions as version_repo

CANARY = "canary"  # the channel name rollout steps are recorded under
_BUCKETS = 10_000  # cohort granularity: 0.01 %


def cohort_bucket(student: str, device_id: str, rollout_id: int) -> int:
    """The device's bucket in 0..9999 for this rollout: stable, uniform, independent per
    rollout (sha256, not Python's salted hash)."""
    digest = hashlib.sha256(f"{student}\0{device_id}\0{rollout_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def in_cohort(student: str, device_id: str, rollout_id: int, percent: int) -> bool:
    """Whether the device gets the rollout's version."""
    return cohort_bucket(student, device_id, rollout_id) < percent * _BUCKETS // 100


@dataclass(frozen=True)
class RolloutInfo:
    """A rollout as people read it."""

    id: int
    student: str
    version: int
    stable_version: int | None
    percent: int
    status: str
    started_at: datetime
    updated_at: datetime


def _info(session: Session, row: Rollout) -> RolloutInfo:
    version = version_repo.get_version_by_id(row.model_version_id, session=session)
    stable = channel_repo.get_channel(row.student, "stable", session=session)
    stable_row = (
        version_repo.get_version_by_id(stable.model_version_id, session=session) if stable else None
    )
    return RolloutInfo(
        id=row.id,
        student=row.student,
        version=version.version if version else -1,
        stable_version=stable_row.version if stable_row else None,
        percent=row.percent,
        status=row.status,
        started_at=row.started_at,
        updated_at=row.updated_at,
    )


def _active(session: Session, student: str) -> Rollout | None:
    query = select(Rollout).where(Rollout.student == student, Rollout.status == "active")
    return session.scalar(query.with_for_update())


def _check_percent(percent: int) -> None:
    if not 1 <= percent <= 100:
        raise RegistryError(f"percent must be 1..100, got {percent}")


def _event(
    session: Session, row: Rollout, action: str, from_id: int | None, reason: str, actor: str
) -> None:
    session.add(
        ChannelEvent(
            student=row.student,
            channel=CANARY,
            action=action,
            from_version_id=from_id,
            to_version_id=row.model_version_id,
            reason=reason,
            actor=actor,
        )
    )


def start(
    database: Database,
    student: str,
    version: int,
    percent: int,
    *,
    reason: str = "",
    actor: str = "cli",
) -> RolloutInfo:
    """Serve published `version` to `percent` % of the student's devices."""
    check_student(student)
    _check_percent(percent)

    def work(session: Session) -> RolloutInfo:
        row = channels.servable(student, version, session=session)
        stable = channel_repo.get_channel(student, "stable", session=session, lock=True)
        if stable is None:
            raise RegistryError(
                f"{student} has no stable version yet: promote the first one instead"
            )
        if stable.model_version_id == row.id:
            raise RegistryError(f"{student} v{version} is already stable")
        running = _active(session, student)
        if running is not None:
            raise RegistryError(
                f"{student} already has a rollout (id {running.id}, {running.percent} %): "
                "promote or abort it first"
            )
        rollout = Rollout(student=student, model_version_id=row.id, percent=percent)
        session.add(rollout)
        session.flush()
        _event(session, rollout, "canary", stable.model_version_id,
               f"start at {percent} %" + (f": {reason}" if reason else ""), actor)  # fmt: skip
        return _info(session, rollout)

    return channels.in_write_transaction(database, work)


def widen(
    database: Database, student: str, percent: int, *, reason: str = "", actor: str = "cli"
) -> RolloutInfo:
    """Serve the running rollout to more devices (the ones already in stay in)."""
    _check_percent(percent)

    def work(session: Session) -> RolloutInfo:
        rollout = _require_active(session, student)
        if percent <= rollout.percent:
            raise RegistryError(
                f"{student}'s rollout is at {rollout.percent} %: widen to more than that"
            )
        before = rollout.percent
        rollout.percent, rollout.updated_at = percent, utcnow()
        _event(session, rollout, "widen", rollout.model_version_id,
               f"{before} % -> {percent} %" + (f": {reason}" if reason else ""), actor)  # fmt: skip
        return _info(session, rollout)

    return channels.in_write_transaction(database, work)


def promote(
    database: Database, student: str, *, reason: str = "", actor: str = "cli"
) -> RolloutInfo:
    """Make the rollout's version stable for every device, and end the rollout."""
    with database.transaction() as session:
        rollout = _require_active(session, student)
        version = version_repo.get_version_by_id(rollout.model_version_id, session=session)
        assert version is not None
        number = version.version
    # The stable move is the registry's own (audit row, same checks as any promotion).
    channels.promote(database, student, number, reason=f"rollout: {reason}", actor=actor)
    return _end(database, student, "promoted", reason, actor)


def abort(database: Database, student: str, *, reason: str = "", actor: str = "cli") -> RolloutInfo:
    """Put every device back on stable and end the rollout."""
    return _end(database, student, "aborted", reason, actor)


def _end(database: Database, student: str, status: str, reason: str, actor: str) -> RolloutInfo:
    def work(session: Session) -> RolloutInfo:
        rollout = _require_active(session, student)
        rollout.status, rollout.updated_at = status, utcnow()
        stable = channel_repo.get_channel(student, "stable", session=session)
        action = "promote" if status == "promoted" else "abort"
        _event(session, rollout, action, stable.model_version_id if stable else None, reason, actor)
        return _info(session, rollout)

    return channels.in_write_transaction(database, work)


def _require_active(session: Session, student: str) -> Rollout:
    rollout = _active(session, student)
    if rollout is None:
        raise RegistryError(
            f"{student} has no rollout running (start one: distillery rollout start)"
        )
    return rollout


def rollouts(database: Database, student: str | None = None) -> list[RolloutInfo]:
    """Rollouts, newest first (every student's, or one's)."""
    with database.transaction() as session:
        query = select(Rollout).order_by(Rollout.id.desc())
        if student is not None:
            query = query.where(Rollout.student == student)
        return [_info(session, row) for row in session.scalars(query)]
