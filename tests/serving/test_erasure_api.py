"""A phone erases its own data over HTTP, follows the erasure to done, and sets consent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from storage.models import Interaction
from tasks.privacy.redact import finish_erasures
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio


def _stored(db: Database) -> dict[str, tuple[str, str]]:
    with db.transaction() as session:
        rows = session.execute(select(Interaction.id, Interaction.device_id, Interaction.consent))
        return {str(i): (d, c) for i, d, c in rows}


async def test_a_device_erases_its_data_and_follows_it_to_done(
    client: httpx.AsyncClient, db: Database
) -> None:
    mine, my_auth = await register(client)
    other, other_auth = await register(client)
    my_items = [interaction() for _ in range(3)]
    other_items = [interaction() for _ in range(2)]
    assert (await client.post("/api/training/feedback", json=upload(mine, my_items),
                              headers=my_auth)).status_code == 200  # fmt: skip
    assert (await client.post("/api/training/feedback", json=upload(other, other_items),
                              headers=other_auth)).status_code == 200  # fmt: skip
    before = _stored(db)

    assert (await client.delete("/api/devices/me/data")).status_code == 401
    resp = await client.delete("/api/devices/me/data", headers=my_auth)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["status"], body["interactions"], body["snapshot_rows"]) == ("pending", 3, None)
    after = _stored(db)
    assert after == {k: v for k, v in before.items() if v[0] != mine}  # the other's, intact

    status_url = body["status_url"]
    assert (await client.get(status_url, headers=other_auth)).status_code == 404  # not theirs
    assert (await client.get(status_url)).status_code == 401
    assert (await client.get("/api/erasures/not-an-id", headers=my_auth)).status_code == 422
    assert (await client.get(status_url, headers=my_auth)).json()["status"] == "pending"
    finish_erasures(db)  # what the data-erasure deployment does every 15 minutes
    done = (await client.get(status_url, headers=my_auth)).json()
    assert done["status"] == "done" and done["finished_at"] and done["snapshot_rows"] == 0

    # The phone re-sends what it still holds: nothing erased comes back.
    resent = await client.post("/api/training/feedback", json=upload(mine, my_items[:2]),
                               headers=my_auth)  # fmt: skip
    assert resent.status_code == 200
    assert (resent.json()["accepted"], resent.json()["not_stored"]) == (0, 2)
    assert _stored(db) == after


async def test_consent_per_interaction(client: httpx.AsyncClient, db: Database) -> None:
    device, auth = await register(client)
    items = [
        interaction(consent="train"),
        interaction(consent="evaluate"),
        interaction(consent="none"),
        interaction(),  # an older app: the operator's default (train)
    ]
    resp = await client.post("/api/training/feedback", json=upload(device, items), headers=auth)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["accepted"], resp.json()["not_stored"], resp.json()["received"]) == (
        3, 1, 4
    )  # fmt: skip
    stored = _stored(db)
    assert {items[i]["id"]: c for i, c in ((0, "train"), (1, "evaluate"), (3, "train"))} == {
        k: v[1] for k, v in stored.items()
    }
    bad = await client.post(
        "/api/training/feedback", json=upload(device, [interaction(consent="maybe")]), headers=auth
    )
    assert bad.status_code == 422 and "consent" in bad.json()["detail"]


async def test_the_operator_default_decides_for_older_apps(
    db: Database, artifact_root: Path
) -> None:
    settings = ServiceSettings(
        _env_file=None, allowed_hosts=["testserver"], default_consent="evaluate"
    )
    app = create_app(settings=settings, database=db, artifact_root=artifact_root)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        device, auth = await register(client)
        items = [interaction(), interaction(consent="train")]
        resp = await client.post("/api/training/feedback", json=upload(device, items), headers=auth)
        assert resp.status_code == 200, resp.text
    assert sorted(v[1] for v in _stored(db).values()) == ["evaluate", "train"]
