"""The engine, migrations and timestamp handling on every database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Device, FeedbackBatch, Interaction


def test_schema_is_at_head(db: Database) -> None:
    assert db.current_revision() == db.head_revision() is not None


def test_timestamps_come_back_aware_utc(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 5, 1, 12, 0, tzinfo=plus_two)
    with db.transaction(write=True) as s:
        s.add(Device(id="d1", token_hash="x" * 64, platform="android", app_version="1.0"))
        batch = FeedbackBatch(device_id="d1")
        s.add(batch)
        s.flush()
        s.add(
            Interaction(
                id=uuid.uuid4(),
                device_id="d1",
                batch_id=batch.id,
                model_name="m",
                model_version="1",
                prompt="p",
                response="r",
                client_created_at=created,
            )
        )
    with db.transaction() as s:
        row = s.scalars(select(Interaction)).one()
    assert row.client_created_at == created
    assert row.client_created_at.tzinfo is not None
    assert row.client_created_at.utcoffset() == timedelta(0)
    assert row.received_at.tzinfo == UTC


def test_naive_timestamps_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.transaction(write=True) as s:
        s.add(
            Device(
                id="d2",
                token_hash="x",
                platform="ios",
                app_version="1",
                created_at=datetime(2026, 1, 1),
            )
        )


def test_failed_transaction_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as s:
        s.add(Device(id="d3", token_hash="x", platform="ios", app_version="1"))
        s.flush()
        raise RuntimeError("boom")
    with db.transaction() as s:
        assert s.get(Device, "d3") is None
