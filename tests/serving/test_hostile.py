"""The project's own hostile suite: what an attacker or a buggy phone sends, on every backend.

Beside the contract tests (schemathesis): revocation between requests on two workers, type
coercion in chat, web and query parameters, and header bytes that are not ASCII.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from serving.auth import enrollment_headers
from storage.db import Database
from storage.repo.devices import delete_device, set_status
from tests.serving.conftest import (
    free_port,
    interaction,
    register,
    start_uvicorn,
    upload,
    wait_healthy,
)

FEEDBACK = "/api/training/feedback"
CHAT = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


@pytest.fixture
def two_workers(db: Database, tmp_path: Path) -> Iterator[str]:
    """A live uvicorn with two worker processes on the test database."""
    port = free_port()
    env = {
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_CHAT_RATE_LIMIT": "1000/minute",
    }
    proc = start_uvicorn(env, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _register(base: str) -> tuple[str, dict[str, str]]:
    resp = httpx.post(f"{base}/api/devices", json={"platform": "android", "app_version": "1"})
    assert resp.status_code == 201, resp.text
    return resp.json()["device_id"], {"Authorization": f"Bearer {resp.json()['token']}"}


def _web_rows(db: Database) -> int:
    with db.transaction() as session:
        return int(session.execute(text("SELECT count(*) FROM interactions")).scalar_one())


@pytest.mark.parametrize("change", ["revoked", "pending", "deleted"])
def test_a_changed_device_is_refused_at_once_on_both_workers(
    two_workers: str, db: Database, change: str
) -> None:
    device_id, auth = _register(two_workers)
    with httpx.Client(base_url=two_workers, timeout=30) as c:
        # Warm both workers: each of these is authenticated, then answered (no student is
        # published here, so chat says 404 after the device check); nothing is stored, so
        # an operator may also delete the device.
        for n in range(6):
            ok = c.post(CHAT, json={**HELLO, "stream": n % 2 == 0}, headers=auth)
            assert ok.status_code == 404, ok.text
        with db.transaction(write=True) as session:  # an operator's change, outside the service
            if change == "deleted":
                assert delete_device(session=session, device_id=device_id)
            else:
                assert set_status(session=session, device_ids=[device_id], status=change)
        before = _web_rows(db)
        expected = 403 if change == "pending" else 401
        codes = []
        for n in range(20):
            body = {**HELLO, "stream": n % 2 == 0}
            codes.append(c.post(CHAT, json=body, headers=auth).status_code)
            codes.append(
                c.post(FEEDBACK, json=upload(device_id, [interaction()]), headers=auth).status_code
            )
        assert codes == [expected] * 40
        assert _web_rows(db) == before  # nothing stored, no token generated


# What a lax parser would read as a number or a flag; each must be refused, not coerced.
COERCED: list[dict[str, Any]] = [
    {"max_tokens": "5"},
    {"max_tokens": "1_0"},
    {"max_tokens": 4.0},
    {"max_tokens": True},
    {"stream": "true"},
    {"stream": 1},
    {"temperature": "0.5"},
    {"top_logprobs": False},
    {"seed": "7"},
    {"logprobs": "yes"},
]


@pytest.mark.anyio
@pytest.mark.parametrize("field", COERCED, ids=lambda f: json.dumps(f))
async def test_chat_refuses_values_of_the_wrong_type(
    client: httpx.AsyncClient, db: Database, field: dict[str, Any]
) -> None:
    _, auth = await register(client)
    resp = await client.post(CHAT, json={**HELLO, **field}, headers=auth)
    assert resp.status_code == 422, resp.text
    (name,) = field
    assert name in resp.text


@pytest.mark.anyio
async def test_chat_rule_on_the_last_message_is_enforced_and_stated(
    client: httpx.AsyncClient,
) -> None:
    _, auth = await register(client)
    body = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    resp = await client.post(CHAT, json=body, headers=auth)
    assert resp.status_code == 422 and "the last message must be the user's" in resp.text
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    described = schema["ChatRequest"]["properties"]["messages"]["description"]
    assert "last message must be the user's" in described


@pytest.mark.anyio
@pytest.mark.parametrize("days", ["1_0", "+5", "5.0", " 5", "0", "367", "05", "1e1", "٣"])
async def test_feedback_volume_days_are_plain_digits(client: httpx.AsyncClient, days: str) -> None:
    resp = await client.get("/api/web/feedback-volume", params={"days": days})
    assert resp.status_code == 422, (days, resp.text)


@pytest.mark.anyio
async def test_feedback_volume_reads_plain_days(client: httpx.AsyncClient) -> None:
    for days in ("1", "30", "366"):
        resp = await client.get("/api/web/feedback-volume", params={"days": days})
        assert resp.status_code == 200 and resp.json()["days"] == int(days)


@pytest.mark.anyio
@pytest.mark.overrides(enrollment="key", enrollment_key="app-secret")
@pytest.mark.parametrize(
    "signature", [b"\xff\xfe", "é".encode("latin-1"), b"\x00" * 64, b"a" * 5000, b""]
)
async def test_any_signature_bytes_get_a_4xx_and_register_nothing(
    tuned: httpx.AsyncClient, db: Database, signature: bytes
) -> None:
    resp = await tuned.post(
        "/api/devices",
        content=b'{"platform": "android", "app_version": "1"}',
        headers=[(b"content-type", b"application/json"), (b"x-enrollment-signature", signature)],
    )
    assert 400 <= resp.status_code < 500, resp.text
    with db.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM devices")).scalar_one() == 0


SIGNED_BODY = b'{"platform": "android", "app_version": "1"}'
JSON = {"Content-Type": "application/json"}


def _devices(db: Database) -> int:
    with db.transaction() as session:
        return int(session.execute(text("SELECT count(*) FROM devices")).scalar_one())


@pytest.mark.anyio
@pytest.mark.overrides(enrollment="key", enrollment_key="app-secret")
async def test_a_captured_signed_registration_registers_once(
    tuned: httpx.AsyncClient, db: Database
) -> None:
    signed = {**JSON, **enrollment_headers("app-secret", SIGNED_BODY)}
    first = await tuned.post("/api/devices", content=SIGNED_BODY, headers=signed)
    assert first.status_code == 201, first.text
    replays = [
        (await tuned.post("/api/devices", content=SIGNED_BODY, headers=signed)) for _ in range(11)
    ]
    assert {r.status_code for r in replays} == {401}
    assert "already used" in replays[0].json()["detail"]
    assert _devices(db) == 1


@pytest.mark.anyio
@pytest.mark.overrides(enrollment="key", enrollment_key="app-secret")
@pytest.mark.parametrize("age", [-400, 301, 86_400])
async def test_a_signature_outside_the_window_is_refused(
    tuned: httpx.AsyncClient, db: Database, age: int
) -> None:
    signed = enrollment_headers("app-secret", SIGNED_BODY, now=time.time() - age)
    resp = await tuned.post("/api/devices", content=SIGNED_BODY, headers={**JSON, **signed})
    assert resp.status_code == 401 and "X-Enrollment-Timestamp" in resp.json()["detail"]
    assert _devices(db) == 0


@pytest.mark.anyio
@pytest.mark.overrides(enrollment="key", enrollment_key="app-secret")
async def test_the_signature_covers_timestamp_and_nonce(
    tuned: httpx.AsyncClient, db: Database
) -> None:
    signed = enrollment_headers("app-secret", SIGNED_BODY)
    for header, value in (
        ("X-Enrollment-Timestamp", str(int(time.time()) + 1)),
        ("X-Enrollment-Nonce", "another-nonce-of-16"),
    ):
        resp = await tuned.post(
            "/api/devices", content=SIGNED_BODY, headers={**JSON, **signed, header: value}
        )
        assert resp.status_code == 403, resp.text
    assert _devices(db) == 0


# Values a lax parser turns into the type the schema asks for; the API must refuse them all.
COERCIONS: dict[str, list[Any]] = {
    "integer": ["5", "1_0", 5.0, True],
    "number": ["0.5", True],
    "boolean": ["true", 1, 0],
}
QUERY_COERCIONS = ["1_0", "+5", " 5", "5.0", "٥"]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(doc, doc["components"]["schemas"][schema["$ref"].split("/")[-1]])
    return schema


def _scalar_fields(
    doc: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path in the body, JSON type) of every integer, number and boolean field."""
    schema = _resolve(doc, schema)
    for option in schema.get("anyOf", []):
        yield from _scalar_fields(doc, option, path)
    kind = schema.get("type")
    if kind in COERCIONS:
        yield path, kind
    elif kind == "array" and "items" in schema:
        yield from _scalar_fields(doc, schema["items"], (*path, 0))
    for name, prop in schema.get("properties", {}).items():
        yield from _scalar_fields(doc, prop, (*path, name))


def _with(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


@pytest.mark.anyio
async def test_no_route_coerces_a_number_or_a_flag(client: httpx.AsyncClient) -> None:
    """Every integer, number and boolean the OpenAPI document declares, in bodies and queries."""
    doc = (await client.get("/openapi.json")).json()
    device_id, auth = await register(client)
    valid = {
        ("post", FEEDBACK): upload(device_id, [interaction()]),
        ("post", CHAT): HELLO,
        ("post", "/api/devices"): {"platform": "android", "app_version": "1"},
        ("post", "/api/review/{interaction_id}"): {"correction": "A better answer."},
    }
    accepted, tried = [], 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body_schema = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body_schema:
                base = valid[(method, path)]  # a new body route needs a valid example here
                for field, kind in _scalar_fields(doc, body_schema["schema"]):
                    for value in COERCIONS[kind]:
                        tried += 1
                        body = _with(base, field, value)
                        resp = await client.request(method, path, json=body, headers=auth)
                        if resp.status_code != 422:  # any other answer means it was read
                            accepted.append(f"{method} {path} {field}={value!r}")
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                numeric = (
                    schema.get("type") == "integer"
                    or "pattern" in schema
                    and "[0-9]" in (schema["pattern"])
                )
                if param["in"] != "query" or not numeric:
                    continue
                for value in QUERY_COERCIONS:
                    tried += 1
                    resp = await client.request(method, path, params={param["name"]: value})
                    if resp.status_code != 422:  # any other answer means it was read
                        accepted.append(f"{method} {path}?{param['name']}={value!r}")
    assert tried >= 40  # the sweep reached the bodies and the queries
    assert not accepted, accepted


@pytest.mark.anyio
@pytest.mark.parametrize("value", [0, 1767225600, 1.5, True])
async def test_timestamps_are_text_not_numbers(client: httpx.AsyncClient, value: object) -> None:
    """A number is not read as Unix time: the document says RFC 3339 text."""
    device_id, auth = await register(client)
    for body in (
        {**upload(device_id, [interaction()]), "timestamp": value},
        upload(device_id, [interaction(created_at=value)]),
        upload(device_id, [interaction(updated_at=value)]),
    ):
        resp = await client.post(FEEDBACK, json=body, headers=auth)
        assert resp.status_code == 422 and "RFC 3339" in resp.text, resp.text
