"""The API document and hostile inputs: every refusal is a 4xx naming the field, nothing stored."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from storage.db import Database
from storage.repo.devices import list_devices
from storage.repo.feedback import interaction_ids
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio

FEEDBACK = "/api/training/feedback"


def stored(db: Database) -> set[uuid.UUID]:
    with db.transaction() as session:
        return interaction_ids(session=session)


def device_count(db: Database) -> int:
    with db.transaction() as session:
        return len(list_devices(session=session))


async def test_document_describes_every_route(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    assert "/api/models/mobile/latest" in paths
    for path in ("/api/devices", FEEDBACK):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].startswith("#/components/schemas/")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`<device_id>.<secret>` from POST /api/devices",
    }
    upload_op = paths[FEEDBACK]["post"]
    assert upload_op["security"] == [{"HTTPBearer": []}]
    assert set(upload_op["responses"]) >= {"200", "401", "403", "413", "415", "422", "429"}
    assert set(paths["/api/devices"]["post"]["responses"]) >= {"201", "403", "415", "422", "429"}
    latest = paths["/api/models/mobile/latest"]["get"]
    assert set(latest["responses"]) >= {"200", "304", "400", "422"}
    assert latest["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Manifest"
    }
    artifact = paths["/api/artifacts/{path}"]["get"]["responses"]
    assert set(artifact) >= {"200", "206", "404", "416"}
    interaction_schema = doc["components"]["schemas"]["InteractionIn"]["properties"]
    assert interaction_schema["rating"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
    }


async def test_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "http://" not in page.text.replace(
        "http://testserver", ""
    )
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/docs-assets/{asset}" in page.text
        js = await client.get(f"/api/docs-assets/{asset}")
        assert js.status_code == 200 and len(js.content) > 10_000


def _set(item: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    item[key] = value
    return item


HOSTILE: list[tuple[str, Any, str]] = [
    ("rating", "5", "interactions[0].rating"),
    ("rating", True, "interactions[0].rating"),
    ("rating", 5.0, "interactions[0].rating"),
    ("latency_ms", "100", "interactions[0].latency_ms"),
    ("prompt", "a\x00b", "interactions[0].prompt"),
    ("response", "\x00", "interactions[0].response"),
    ("correction", "fix\x00", "interactions[0].correction"),
    ("category", "c\x00", "interactions[0].category"),
    ("model_name", "m\x00", "interactions[0].model_name"),
    ("created_at", "0001-01-01T00:30:00+05:00", "interactions[0].created_at"),
    ("created_at", "9999-12-31T23:30:00-05:00", "interactions[0].created_at"),
    ("updated_at", "0001-01-01T00:00:00+01:00", "interactions[0].updated_at"),
]


@pytest.mark.parametrize(("key", "value", "field"), HOSTILE)
async def test_hostile_interaction_fields_are_422_and_store_nothing(
    client: httpx.AsyncClient, db: Database, key: str, value: Any, field: str
) -> None:
    device_id, auth = await register(client)
    body = upload(device_id, [_set(interaction(), key, value), interaction()])
    resp = await client.post(FEEDBACK, json=body, headers=auth)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"].startswith(f"{field}:")
    assert stored(db) == set()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(timestamp="0001-01-01T00:00:00+00:01"), "timestamp"),
        (lambda b: b.update(device_id="d\x00"), "device_id"),
    ],
)
async def test_hostile_envelope_is_422(
    client: httpx.AsyncClient, db: Database, mutate: Any, field: str
) -> None:
    device_id, auth = await register(client)
    body = upload(device_id, [interaction()])
    mutate(body)
    resp = await client.post(FEEDBACK, json=body, headers=auth)
    assert resp.status_code == 422 and resp.json()["detail"].startswith(f"{field}:")
    assert stored(db) == set()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, db: Database, content_type: str | None
) -> None:
    device_id, auth = await register(client)
    raw = httpx.Request("POST", "http://x", json=upload(device_id, [interaction()])).content
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    resp = await client.post(FEEDBACK, content=raw, headers=headers)
    assert resp.status_code == 415 and "application/json" in resp.json()["detail"]
    reg = await client.post(
        "/api/devices", content=b'{"platform":"a","app_version":"1"}', headers=headers
    )
    assert reg.status_code == 415
    assert stored(db) == set() and device_count(db) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "and\x00roid", "app_version": "1"}, "platform"),
        ({"platform": "android", "app_version": "\x00"}, "app_version"),
        ({"platform": 5, "app_version": "1"}, "platform"),
    ],
)
async def test_hostile_registration_is_422(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/devices", json=body)
    assert resp.status_code == 422 and resp.json()["detail"].startswith(f"{field}:")
    assert device_count(db) == 0


@pytest.mark.parametrize("value", ["1_0", "v4", "١", "-1", " 3", "99999999999"])
async def test_current_version_must_be_plain_digits(client: httpx.AsyncClient, value: str) -> None:
    resp = await client.get("/api/models/mobile/latest", params={"current_version": value})
    assert resp.status_code == 422 and resp.json()["detail"].startswith("current_version:")


async def test_nul_in_paths_and_queries_is_4xx_without_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/models/%00/versions")).status_code == 422
    resp = await client.get("/api/models/mobile/latest", params={"student": "a\x00"})
    assert resp.status_code == 422
    assert (await client.get("/api/artifacts/a%00b")).status_code == 404


async def test_untrusted_host_never_steers_download_urls(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/models/mobile/latest", headers={"Host": "evil.example"})
    assert resp.status_code == 400 and "DISTILLERY_PUBLIC_BASE_URL" in resp.json()["detail"]
