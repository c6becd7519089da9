"""Helpers to put interactions into a real database through the ORM."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert as insert_stmt

from storage.db import Database
from storage.models import Device, FeedbackBatch, Interaction

PAST = datetime(2026, 1, 1, tzinfo=UTC)


def make_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A plausible interaction: a unique prompt, a good response, rated 5."""
    row: dict[str, Any] = {
        "id": uuid.UUID(int=n + 1),
        "model_name": "phi-3-mini",
        "model_version": "1",
        "prompt": f"Explain topic number {n} in two sentences.",
        "response": f"Topic {n} is interesting. It has many facets worth learning.",
        "correction": None,
        "rating": 5,
        "category": "explain",
    }
    row.update(overrides)
    return row


def insert(
    db: Database,
    rows: list[dict[str, Any]],
    *,
    device: str = "phone-1",
    received_at: datetime | None = None,
) -> None:
    """Store rows as one feedback batch of one device, received well in the past by default."""
    with db.transaction(write=True) as session:
        if session.get(Device, device) is None:
            session.add(Device(id=device, token_hash="x" * 64, platform="android", app_version="1"))
        batch = FeedbackBatch(device_id=device, received_at=PAST)
        session.add(batch)
        session.flush()
        values = [
            {
                **row,
                "device_id": device,
                "batch_id": batch.id,
                "client_created_at": PAST,
                "received_at": received_at or PAST + timedelta(seconds=i),
            }
            for i, row in enumerate(rows)
        ]
        if values:  # one executemany through the ORM: seq order follows list order
            session.execute(insert_stmt(Interaction), values)


@pytest.fixture
def add_rows() -> Callable[..., None]:
    """`add_rows(db, rows)` inserts interaction dicts (see make_row)."""
    return insert
