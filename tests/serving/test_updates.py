"""Feedback can be updated: a later rating or correction for a stored id wins, earlier kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Interaction, InteractionRevision
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio
FEEDBACK = "/api/training/feedback"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def row(db: Database, item_id: str) -> Interaction:
    with db.transaction() as session:
        return session.scalars(
            select(Interaction).where(Interaction.id == uuid.UUID(item_id))
        ).one()


async def test_later_update_replaces_rating_and_keeps_the_old_values(
    client: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await register(client)
    item = interaction(rating=2, correction=None, created_at=T0.isoformat())
    other = interaction()
    first = await client.post(FEEDBACK, json=upload(device_id, [item, other]), headers=auth)
    assert first.json()["accepted"] == 2
    before = row(db, item["id"])

    changed = {**item, "rating": 1, "correction": "Paris is the capital of France."}
    changed["updated_at"] = (T0 + timedelta(minutes=5)).isoformat()
    resp = await client.post(FEEDBACK, json=upload(device_id, [changed, other]), headers=auth)
    assert resp.status_code == 200
    assert {k: resp.json()[k] for k in ("accepted", "updated", "duplicates", "received")} == {
        "accepted": 0,
        "updated": 1,
        "duplicates": 1,
        "received": 2,
    }
    after = row(db, item["id"])
    assert (after.rating, after.correction) == (1, "Paris is the capital of France.")
    assert after.client_updated_at == T0 + timedelta(minutes=5)
    # A new arrival seq: the next snapshot (seq > its watermark) reads the updated record.
    assert after.seq > max(row(db, other["id"]).seq, before.seq), (after.seq, before.seq)
    with db.transaction() as session:
        audit = session.scalars(select(InteractionRevision)).all()
    assert [(a.interaction_id, a.rating, a.correction, a.previous_seq) for a in audit] == [
        (uuid.UUID(item["id"]), 2, None, before.seq)
    ]

    # An older (or equal) updated_at loses: last write wins by the client's clock.
    stale = {**changed, "rating": 5, "updated_at": (T0 + timedelta(minutes=1)).isoformat()}
    again = await client.post(FEEDBACK, json=upload(device_id, [stale]), headers=auth)
    assert (again.json()["updated"], again.json()["duplicates"]) == (0, 1)
    assert row(db, item["id"]).rating == 1


async def test_only_the_owning_device_can_update(client: httpx.AsyncClient, db: Database) -> None:
    owner, owner_auth = await register(client)
    intruder, intruder_auth = await register(client)
    item = interaction(rating=5, created_at=T0.isoformat())
    await client.post(FEEDBACK, json=upload(owner, [item]), headers=owner_auth)
    hijack = {**item, "rating": 1, "updated_at": (T0 + timedelta(hours=1)).isoformat()}
    resp = await client.post(FEEDBACK, json=upload(intruder, [hijack]), headers=intruder_auth)
    assert (resp.json()["updated"], resp.json()["duplicates"]) == (0, 1)
    assert row(db, item["id"]).rating == 5


async def test_update_without_change_or_without_updated_at_is_a_duplicate(
    client: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await register(client)
    item = interaction(rating=4, created_at=T0.isoformat())
    await client.post(FEEDBACK, json=upload(device_id, [item]), headers=auth)
    plain = {**item, "rating": 1}  # no updated_at: an ordinary retry
    same = {**item, "updated_at": (T0 + timedelta(hours=1)).isoformat()}  # nothing changed
    resp = await client.post(FEEDBACK, json=upload(device_id, [plain, same]), headers=auth)
    assert (resp.json()["updated"], resp.json()["duplicates"]) == (0, 2)
    assert row(db, item["id"]).rating == 4
