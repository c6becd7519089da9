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


def test_sqlite_timestamp_text_matches_sqlalchemys_own(sqlite_db: Database) -> None:
    """The one-step SQLite processor writes exactly what SQLAlchemy's DATETIME would."""
    from sqlalchemy.types import TypeDecorator

    from storage.models import UTCDateTime

    dialect = sqlite_db.engine.dialect
    column = UTCDateTime().dialect_impl(dialect)  # as a statement uses it: impl is DATETIME
    fast = column.bind_processor(dialect)
    composed = TypeDecorator.bind_processor(column, dialect)  # process_bind_param + DATETIME
    assert fast is not None and composed is not None
    west, east = timezone(timedelta(hours=-11, minutes=-30)), timezone(timedelta(hours=14))
    values = [
        datetime(2026, 5, 1, 12, 0, tzinfo=UTC),  # no microseconds: isoformat would drop them
        datetime(2026, 5, 1, 12, 0, 0, 1, tzinfo=east),
        datetime(1, 1, 1, 23, 59, 59, 999_999, tzinfo=west),  # year 1, 4 digits
        datetime(9999, 12, 31, 0, 0, tzinfo=east),
        datetime(999, 6, 15, 8, 30, 5, 120_000, tzinfo=west),
        datetime.now(UTC),
        None,
    ]
    for value in values:
        assert fast(value) == composed(value), value
    with pytest.raises(ValueError, match="naive datetime"):
        fast(datetime(2026, 1, 1))


def test_failed_transaction_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as s:
        s.add(Device(id="d3", token_hash="x", platform="ios", app_version="1"))
        s.flush()
        raise RuntimeError("boom")
    with db.transaction() as s:
        assert s.get(Device, "d3") is None
