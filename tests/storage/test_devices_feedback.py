"""Device and feedback repositories: idempotent batches, concurrent overlapping writers."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Device, FeedbackBatch
from storage.repo.devices import create_device, get_token_hash, touch_device
from storage.repo.feedback import (
    FeedbackRow,
    count_interactions,
    insert_feedback_batch,
    interaction_ids,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def row(item_id: uuid.UUID) -> FeedbackRow:
    return FeedbackRow(
        id=item_id,
        model_name="m",
        model_version="1",
        prompt="p",
        response="r",
        client_created_at=NOW,
    )


@pytest.fixture
def device(db: Database) -> str:
    with db.transaction(write=True) as session:
        create_device(
            session=session, device_id="d1", token_hash="h" * 64, platform="ios", app_version="1"
        )
    return "d1"


def test_device_lookup_and_touch(db: Database, device: str) -> None:
    with db.transaction(write=True) as session:
        assert get_token_hash(session=session, device_id=device) == "h" * 64
        assert get_token_hash(session=session, device_id="nope") is None
        touch_device(session=session, device_id=device, seen_at=NOW)
    with db.transaction() as session:
        assert session.get(Device, device).last_seen_at == NOW


def test_batch_counts_and_records_duplicates(db: Database, device: str) -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    with db.transaction(write=True) as session:
        first = insert_feedback_batch(
            session=session,
            device_id=device,
            interactions=[row(i) for i in ids + ids[:1]],
            client_timestamp=NOW,
        )
    assert (first.accepted, first.duplicates) == (4, 1)
    with db.transaction(write=True) as session:
        again = insert_feedback_batch(
            session=session, device_id=device, interactions=[row(i) for i in ids[2:]]
        )
    assert (again.accepted, again.duplicates) == (0, 2)
    with db.transaction() as session:
        assert interaction_ids(session=session, device_id=device) == set(ids)
        assert count_interactions(session=session) == 4
        batch = session.get(FeedbackBatch, first.batch_id)
        assert (batch.accepted, batch.duplicates, batch.client_timestamp) == (4, 1, NOW)


@pytest.mark.parametrize("with_updated_at", [False, True], ids=["row-count", "returning"])
def test_large_batch_counts_across_statements(
    db: Database, device: str, with_updated_at: bool
) -> None:
    """Over 500 rows span several statements; stored and repeated rows are counted exactly."""
    old = [uuid.uuid4() for _ in range(150)]
    with db.transaction(write=True) as session:
        insert_feedback_batch(session=session, device_id=device, interactions=map(row, old))
    later = NOW.replace(hour=11) if with_updated_at else None
    fresh = [uuid.uuid4() for _ in range(1050)]
    batch = [row(i)._replace(client_updated_at=later) for i in fresh + old[:120]]
    with db.transaction(write=True) as session:
        result = insert_feedback_batch(session=session, device_id=device, interactions=batch)
    # Re-sent rows with a later updated_at but the same rating and correction change nothing.
    assert (result.accepted, result.duplicates, result.updated) == (1050, 120, 0)
    with db.transaction() as session:
        assert count_interactions(session=session) == 1200


def test_failed_transaction_stores_nothing(db: Database, device: str) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as session:
        insert_feedback_batch(session=session, device_id=device, interactions=[row(uuid.uuid4())])
        raise RuntimeError("the caller failed after the insert")
    with db.transaction() as session:
        assert count_interactions(session=session) == 0
        assert session.scalars(select(FeedbackBatch)).all() == []


def test_concurrent_overlapping_batches(db: Database, device: str) -> None:
    pool = [uuid.uuid4() for _ in range(120)]
    results = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        batch = [pool[(seed * 7 + k * 3) % len(pool)] for k in range(40)]
        with db.transaction(write=True) as session:
            result = insert_feedback_batch(
                session=session, device_id=device, interactions=[row(i) for i in batch]
            )
        with lock:
            results.append((result, batch))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = {i for _, batch in results for i in batch}
    with db.transaction() as session:
        assert interaction_ids(session=session) == sent
    assert len(results) == 12
    assert sum(r.accepted for r, _ in results) == len(sent)
    assert sum(r.accepted + r.duplicates for r, _ in results) == 12 * 40
