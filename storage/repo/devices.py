"""Devices: registration, token-hash lookup and last-seen bookkeeping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import Device, utcnow


def create_device(
    *, session: Session, device_id: str, token_hash: str, platform: str, app_version: str
) -> Device:
    """Add a device row; the caller hashes the token (only the hash is stored)."""
    device = Device(id=device_id, token_hash=token_hash, platform=platform, app_version=app_version)
    session.add(device)
    session.flush()
    return device


def get_token_hash(*, session: Session, device_id: str) -> str | None:
    """The stored token hash of a device, None when the device is unknown."""
    return session.scalar(select(Device.token_hash).where(Device.id == device_id))


def touch_device(*, session: Session, device_id: str, seen_at: datetime | None = None) -> None:
    """Record that the device was just heard from."""
    session.execute(
        update(Device).where(Device.id == device_id).values(last_seen_at=seen_at or utcnow())
    )
