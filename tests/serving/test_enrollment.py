"""Who may teach the model: enrollment policies, revocation, rate limits, quota, trusted hosts."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from pydantic import ValidationError

from cli.main import main as cli
from serving.auth import enrollment_headers
from serving.settings import ServiceSettings
from storage.db import Database
from storage.repo.devices import delete_device, list_devices, set_status
from storage.repo.feedback import interaction_ids
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio
FEEDBACK = "/api/training/feedback"
REG = {"platform": "android", "app_version": "1.2"}


def stored(db: Database) -> set[uuid.UUID]:
    with db.transaction() as session:
        return interaction_ids(session=session)


@pytest.mark.overrides(enrollment="key", enrollment_key="app-secret")
async def test_enrollment_key_needs_the_body_hmac(tuned: httpx.AsyncClient, db: Database) -> None:
    body = orjson.dumps(REG)
    json_type = {"Content-Type": "application/json"}
    missing = await tuned.post("/api/devices", content=body, headers=json_type)
    assert missing.status_code == 403 and "X-Enrollment-Signature" in missing.json()["detail"]
    wrong = enrollment_headers("other-secret", body)
    bad = await tuned.post("/api/devices", content=body, headers={**json_type, **wrong})
    assert bad.status_code == 403
    good = await tuned.post(
        "/api/devices",
        content=body,
        headers={**json_type, **enrollment_headers("app-secret", body)},
    )
    assert good.status_code == 201 and good.json()["status"] == "active"
    with db.transaction() as session:
        assert [d.id for d in list_devices(session=session)] == [good.json()["device_id"]]


@pytest.mark.overrides(enrollment="approval")
async def test_approval_then_revocation_through_the_cli(
    tuned: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", db.url.render_as_string(hide_password=False))
    device_id, auth = await register_pending(tuned)
    first = await tuned.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth)
    assert first.status_code == 403 and "approval" in first.json()["detail"]

    assert cli(["devices", "approve", device_id]) == 0
    ok = await tuned.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1

    # The revocation applies to the next upload.
    assert cli(["devices", "revoke", device_id]) == 0
    late = [interaction()]
    refused = await tuned.post(FEEDBACK, json=upload(device_id, late), headers=auth)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert uuid.UUID(late[0]["id"]) not in stored(db)
    assert cli(["devices", "list", "--status", "revoked"]) == 0
    assert device_id in capsys.readouterr().out
    assert cli(["devices", "revoke", "no-such-device"]) == 1


async def register_pending(c: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    resp = await c.post("/api/devices", json=REG)
    assert resp.status_code == 201 and resp.json()["status"] == "pending"
    return resp.json()["device_id"], {"Authorization": f"Bearer {resp.json()['token']}"}


async def test_deleted_device_is_401_not_500(tuned: httpx.AsyncClient, db: Database) -> None:
    device_id, auth = await register(tuned)
    assert (
        await tuned.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth)
    ).status_code == 200
    other_id, other_auth = await register(tuned)
    # Verified once, then deleted: the next upload is refused.
    warm = await tuned.post(FEEDBACK, json=upload(other_id, []), headers=other_auth)
    assert warm.status_code == 422
    with db.transaction(write=True) as session:
        assert delete_device(session=session, device_id=other_id)
    resp = await tuned.post(FEEDBACK, json=upload(other_id, [interaction()]), headers=other_auth)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.overrides(registration_rate_limit="3/minute")
async def test_registration_is_rate_limited_per_address(
    tuned: httpx.AsyncClient, db: Database
) -> None:
    codes = [(await tuned.post("/api/devices", json=REG)).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    limited = await tuned.post("/api/devices", json=REG)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    with db.transaction() as session:
        assert len(list_devices(session=session)) == 3


@pytest.mark.overrides(upload_rate_limit="2/minute")
async def test_uploads_are_rate_limited_per_device(tuned: httpx.AsyncClient, db: Database) -> None:
    device_a, auth_a = await register(tuned)
    device_b, auth_b = await register(tuned)
    codes = []
    for _ in range(3):
        resp = await tuned.post(FEEDBACK, json=upload(device_a, [interaction()]), headers=auth_a)
        codes.append(resp.status_code)
    assert codes == [200, 200, 429] and int(resp.headers["retry-after"]) >= 1
    other = await tuned.post(FEEDBACK, json=upload(device_b, [interaction()]), headers=auth_b)
    assert other.status_code == 200  # the limit is per device
    assert len(stored(db)) == 3


@pytest.mark.overrides(device_daily_quota=5)
async def test_daily_quota_refuses_the_batch_that_would_pass_it(
    tuned: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await register(tuned)
    first = [interaction() for _ in range(3)]
    assert (await tuned.post(FEEDBACK, json=upload(device_id, first), headers=auth)).json()[
        "accepted"
    ] == 3
    over = await tuned.post(
        FEEDBACK, json=upload(device_id, [interaction() for _ in range(3)]), headers=auth
    )
    assert over.status_code == 429 and "quota" in over.json()["detail"]
    assert int(over.headers["retry-after"]) <= 86_400
    fits = await tuned.post(
        FEEDBACK, json=upload(device_id, [interaction() for _ in range(2)]), headers=auth
    )
    assert fits.status_code == 200
    assert len(stored(db)) == 5


def test_production_profile_needs_a_trusted_origin() -> None:
    with pytest.raises(ValidationError, match="DISTILLERY_PUBLIC_BASE_URL"):
        ServiceSettings(_env_file=None, profile="production")
    ok = ServiceSettings(_env_file=None, profile="production", allowed_hosts=["models.example"])
    assert ok.trusted_hosts() == frozenset({"models.example"})
    with pytest.raises(ValidationError, match="ENROLLMENT_KEY"):
        ServiceSettings(_env_file=None, enrollment="key")


@pytest.mark.overrides(public_base_url="https://models.example")
async def test_public_base_url_wins_over_any_host(tuned: httpx.AsyncClient) -> None:
    resp = await tuned.get("/api/models/mobile/latest", headers={"Host": "evil.example"})
    assert resp.status_code == 200


async def test_revoked_status_blocks_cached_tokens_in_process(
    client: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await register(client)
    assert (
        await client.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth)
    ).status_code == 200
    with db.transaction(write=True) as session:
        set_status(session=session, device_ids=[device_id], status="revoked")
    for _ in range(3):
        resp = await client.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth)
        assert resp.status_code == 401
    assert len(stored(db)) == 1
