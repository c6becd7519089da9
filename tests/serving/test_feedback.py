"""Feedback upload over HTTP: auth, idempotence, limits and atomic rejection, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from storage.db import Database
from storage.repo.feedback import interaction_ids
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio


def stored(db: Database) -> set[uuid.UUID]:
    with db.transaction() as session:
        return interaction_ids(session=session)


async def test_upload_is_idempotent_and_counts_duplicates(
    client: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await register(client)
    items = [interaction() for _ in range(5)]
    first = await client.post("/api/training/feedback", json=upload(device_id, items), headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 5 and first.json()["duplicates"] == 0
    uuid.UUID(first.json()["batch_id"])

    # A retry of three old ids plus two new ones, one of them repeated inside the request.
    new = [interaction(), interaction()]
    again = items[:3] + new + [new[0]]
    second = await client.post(
        "/api/training/feedback", json=upload(device_id, again), headers=auth
    )
    assert second.json() == {
        "batch_id": second.json()["batch_id"],
        "accepted": 2,
        "updated": 0,
        "duplicates": 4,
        "not_stored": 0,
        "received": 6,
    }
    assert second.json()["batch_id"] != first.json()["batch_id"]
    assert stored(db) == {uuid.UUID(i["id"]) for i in items + new}


async def test_stored_row_keeps_every_field(client: httpx.AsyncClient, db: Database) -> None:
    device_id, auth = await register(client)
    item = interaction(correction="Paris, France.", rating=2, category=None, latency_ms=None)
    item["created_at"] = "2026-01-02T03:04:05+02:00"
    resp = await client.post("/api/training/feedback", json=upload(device_id, [item]), headers=auth)
    assert resp.status_code == 200
    from storage.models import Interaction

    with db.transaction() as session:
        row = session.query(Interaction).one()
        assert (row.device_id, row.prompt, row.correction, row.rating) == (
            device_id,
            item["prompt"],
            "Paris, France.",
            2,
        )
        assert row.category is None and row.latency_ms is None
        assert row.client_created_at.isoformat() == "2026-01-02T01:04:05+00:00"
        assert str(row.batch_id) == resp.json()["batch_id"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer nodot"}, "malformed"),
        ({"Authorization": "Bearer abc.def"}, "invalid bearer token"),
    ],
)
async def test_bad_or_missing_token_is_401(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], message: str
) -> None:
    device_id, _ = await register(client)
    body = upload(device_id, [interaction()])
    resp = await client.post("/api/training/feedback", json=body, headers=headers)
    assert resp.status_code == 401
    assert message in resp.json()["detail"]
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert stored(db) == set()


async def test_wrong_secret_for_a_real_device_is_401(client: httpx.AsyncClient) -> None:
    device_id, _ = await register(client)
    forged = {"Authorization": f"Bearer {device_id}.not-the-secret"}
    resp = await client.post(
        "/api/training/feedback", json=upload(device_id, [interaction()]), headers=forged
    )
    assert resp.status_code == 401


async def test_token_of_another_device_is_403(client: httpx.AsyncClient, db: Database) -> None:
    device_a, auth_a = await register(client)
    device_b, _ = await register(client)
    resp = await client.post(
        "/api/training/feedback", json=upload(device_b, [interaction()]), headers=auth_a
    )
    assert resp.status_code == 403
    assert "device_id" in resp.json()["detail"]
    assert stored(db) == set()


@pytest.fixture
async def device(client: httpx.AsyncClient) -> AsyncIterator[tuple[str, dict[str, str]]]:
    yield await register(client)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["interactions"][1].update(prompt="x" * 16_001), "interactions[1].prompt"),
        (lambda b: b["interactions"][0].update(rating=6), "interactions[0].rating"),
        (lambda b: b["interactions"][2].update(id="not-a-uuid"), "interactions[2].id"),
        (
            lambda b: b["interactions"][1].update(created_at="2026-01-01T00:00:00"),
            "interactions[1].created_at",
        ),
        (lambda b: b["interactions"][0].pop("response"), "interactions[0].response"),
        (
            lambda b: b["interactions"][2].update(correction="y" * 16_001),
            "interactions[2].correction",
        ),
        (lambda b: b.update(timestamp="2026-01-01T00:00:00"), "timestamp"),
        (lambda b: b.update(interactions=[]), "interactions"),
    ],
)
async def test_invalid_batch_names_the_field_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, device: tuple[str, dict[str, str]], mutate, field
) -> None:
    device_id, auth = device
    kept = [interaction()]
    ok = await client.post("/api/training/feedback", json=upload(device_id, kept), headers=auth)
    assert ok.status_code == 200
    body = upload(device_id, [interaction() for _ in range(3)])
    mutate(body)
    resp = await client.post("/api/training/feedback", json=body, headers=auth)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"].startswith(f"{field}:")
    assert resp.json()["errors"][0]["field"] == field
    assert stored(db) == {uuid.UUID(kept[0]["id"])}


async def test_malformed_json_is_422(
    client: httpx.AsyncClient, device: tuple[str, dict[str, str]]
) -> None:
    _, auth = device
    json_type = {**auth, "Content-Type": "application/json"}
    resp = await client.post("/api/training/feedback", content=b"{not json", headers=json_type)
    assert resp.status_code == 422
    assert "JSON" in resp.json()["detail"]


async def test_too_many_interactions_is_422(
    client: httpx.AsyncClient, db: Database, device: tuple[str, dict[str, str]]
) -> None:
    device_id, auth = device
    body = upload(device_id, [interaction(prompt="p", response="r") for _ in range(501)])
    resp = await client.post("/api/training/feedback", json=body, headers=auth)
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("interactions:")
    assert "500" in resp.json()["detail"]
    assert stored(db) == set()


async def test_oversize_body_is_413_by_content_length(
    client: httpx.AsyncClient, db: Database, device: tuple[str, dict[str, str]]
) -> None:
    device_id, auth = device
    # 200 interactions of 12k chars each: every field is legal, the body (2.4 MB) is not.
    body = upload(device_id, [interaction(prompt="p" * 12_000) for _ in range(200)])
    resp = await client.post("/api/training/feedback", json=body, headers=auth)
    assert resp.status_code == 413
    assert "2097152 bytes" in resp.json()["detail"]
    assert stored(db) == set()


async def test_oversize_chunked_body_is_413(
    client: httpx.AsyncClient, db: Database, device: tuple[str, dict[str, str]]
) -> None:
    _, auth = device

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"device_id": "x", "interactions": ['
        for _ in range(400):  # 400 x 8 KiB = 3.2 MiB, never all sent
            yield b'"' + b"a" * 8192 + b'",'
        yield b"]}"

    json_type = {**auth, "Content-Type": "application/json"}
    resp = await client.post("/api/training/feedback", content=chunks(), headers=json_type)
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413
    assert stored(db) == set()
