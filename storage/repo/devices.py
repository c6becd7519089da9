"""Devices: registration, credentials lookup, enrollment status, role, last-seen bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Device, EnrollmentNonce, FeedbackBatch, Interaction, utcnow

STATUSES = ("active", "pending", "revoked")
# user: uploads and chats; reviewer: also reads the review queue and corrects answers.
ROLES = ("user", "reviewer")
REVIEWER = "reviewer"


@dataclass(frozen=True)
class Credentials:
    """What authentication needs of a device: its token hash, enrollment status and role."""

    token_hash: str
    status: str
    role: str = "user"


@dataclass(frozen=True)
class DeviceInfo:
    """A device as admins list it."""

    id: str
    status: str
    role: str
    platform: str
    app_version: str
    created_at: datetime
    last_seen_at: datetime | None
    interactions: int


def create_device(
    *,
    session: Session,
    device_id: str,
    token_hash: str,
    platform: str,
    app_version: str,
    status: str = "active",
) -> Device:
    """Add a device row; the caller hashes the token (only the hash is stored)."""
    device = Device(
        id=device_id,
        token_hash=token_hash,
        platform=platform,
        app_version=app_version,
        status=status,
    )
    session.add(device)
    session.flush()
    return device


def get_token_hash(*, session: Session, device_id: str) -> str | None:
    """The stored token hash of a device, None when the device is unknown."""
    return session.scalar(select(Device.token_hash).where(Device.id == device_id))


def get_credentials(*, session: Session, device_id: str, lock: bool = False) -> Credentials | None:
    """Token hash, status and role of a device (None if unknown); `lock` holds the row.

    Locking the row inside an upload's transaction serializes that device's uploads, so a
    revocation or the daily quota can never be overtaken by a concurrent upload.
    """
    query = select(Device.token_hash, Device.status, Device.role).where(Device.id == device_id)
    if lock:
        query = query.with_for_update()
    # A Core read on the session's connection: it runs once per upload, and the ORM execute
    # path cost as much as the query. The device row is never a pending ORM object here.
    row = session.connection().execute(query).first()
    return Credentials(row.token_hash, row.status, row.role) if row else None


def set_status(*, session: Session, device_ids: Sequence[str], status: str) -> list[str]:
    """Set the enrollment status of these devices; returns the ids that exist."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    found = list(session.scalars(select(Device.id).where(Device.id.in_(device_ids))))
    if found:
        session.execute(
            update(Device)
            .where(Device.id.in_(found))
            .values(status=status, status_changed_at=utcnow())
        )
    return sorted(found)


def set_role(*, session: Session, device_ids: Sequence[str], role: str) -> list[str]:
    """Give these devices a role; returns the ids that exist.

    Authentication reads the role with the token on every request, so the change applies
    to each device's next request, on every worker.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    found = list(session.scalars(select(Device.id).where(Device.id.in_(device_ids))))
    if found:
        session.execute(update(Device).where(Device.id.in_(found)).values(role=role))
    return sorted(found)


def delete_device(*, session: Session, device_id: str) -> bool:
    """Remove a device that never stored feedback (its feedback keeps it otherwise)."""
    result: Any = session.execute(delete(Device).where(Device.id == device_id))
    return bool(result.rowcount)


def list_devices(
    *, session: Session, status: str | None = None, role: str | None = None
) -> list[DeviceInfo]:
    """Every device (or those with a status, a role), oldest first, with its interaction count."""
    counts = (
        select(Interaction.device_id, func.count().label("n"))
        .group_by(Interaction.device_id)
        .subquery()
    )
    query = (
        select(Device, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.device_id == Device.id)
        .order_by(Device.created_at, Device.id)
    )
    if status is not None:
        query = query.where(Device.status == status)
    if role is not None:
        query = query.where(Device.role == role)
    return [
        DeviceInfo(
            d.id, d.status, d.role, d.platform, d.app_version, d.created_at, d.last_seen_at, int(n)
        )
        for d, n in session.execute(query)
    ]


def interactions_since(*, session: Session, device_id: str, since: datetime) -> int:
    """Interactions a device's batches stored since `since` (the daily quota's measure)."""
    query = select(func.coalesce(func.sum(FeedbackBatch.accepted), 0)).where(
        FeedbackBatch.device_id == device_id, FeedbackBatch.received_at >= since
    )
    return int(session.scalar(query) or 0)


def touch_device(*, session: Session, device_id: str, seen_at: datetime | None = None) -> None:
    """Record that the device was just heard from."""
    session.execute(
        update(Device).where(Device.id == device_id).values(last_seen_at=seen_at or utcnow())
    )


def remember_nonce(
    *, session: Session, nonce: str, seen_at: datetime, keep_after: datetime
) -> bool:
    """Record a registration nonce; False when it was seen already (a replay).

    Nonces older than `keep_after` are forgotten first: their signatures have expired, so a
    replay of them is refused by its timestamp instead. The primary key decides a race
    between workers: the second insert of one nonce fails.
    """
    session.execute(delete(EnrollmentNonce).where(EnrollmentNonce.seen_at < keep_after))
    if session.get(EnrollmentNonce, nonce) is not None:
        return False
    session.add(EnrollmentNonce(nonce=nonce, seen_at=seen_at))
    try:
        session.flush()
    except IntegrityError:
        return False
    return True
