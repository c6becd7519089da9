"""The review API through the real ASGI app: reviewers only, queue, corrections, bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from cli.main import main as cli
from storage.db import Database
from storage.models import DataAuditEvent, Interaction
from storage.repo.devices import set_role
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio
QUEUE = "/api/review/queue"


def uncertain(share: float) -> dict:
    return {"tokens": 12, "mean_entropy": 1.5, "low_p_share": share, "alert_counts": {}}


async def reviewer(client: httpx.AsyncClient, db: Database) -> tuple[str, dict[str, str]]:
    device_id, auth = await register(client)
    with db.transaction(write=True) as session:
        set_role(session=session, device_ids=[device_id], role="reviewer")
    return device_id, auth


async def phone_answers(client: httpx.AsyncClient, ratings: list[int | None]) -> list[str]:
    """A phone uploads answers with these ratings; their ids."""
    device_id, auth = await register(client)
    items = [interaction(rating=r, prompt=f"Question {i}?") for i, r in enumerate(ratings)]
    resp = await client.post("/api/training/feedback", json=upload(device_id, items), headers=auth)
    assert resp.status_code == 200 and resp.json()["accepted"] == len(items)
    return [i["id"] for i in items]


def web_answer(db: Database, device_id: str, share: float) -> str:
    """A web chat turn with its uncertainty summary, as the chat stores it."""
    from storage.models import utcnow
    from storage.repo.feedback import FeedbackRow, insert_feedback_batch

    row = FeedbackRow(
        id=uuid.uuid4(),
        model_name="smollm2-chat",
        model_version="1",
        prompt="What is 7 times 8?",
        response="54",
        client_created_at=utcnow(),
        source="web",
        uncertainty=uncertain(share),
    )
    with db.transaction(write=True) as session:
        insert_feedback_batch(session=session, device_id=device_id, interactions=[row])
    return str(row.id)


async def test_only_reviewers_read_the_queue(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.get(QUEUE)).status_code == 401
    _, plain = await register(client)
    refused = await client.get(QUEUE, headers=plain)
    assert refused.status_code == 403 and "distillery devices grant reviewer" in refused.text
    me = await client.get("/api/devices/me", headers=plain)
    assert me.status_code == 200 and me.json()["role"] == "user"
    device_id, auth = await reviewer(client, db)
    assert (await client.get("/api/devices/me", headers=auth)).json() == {
        "device_id": device_id,
        "role": "reviewer",
    }
    resp = await client.get(QUEUE, headers=auth)
    assert resp.status_code == 200 and resp.json() == {"items": []}
    for bad in ("0", "201", "1_0", "5.0", "-1"):
        assert (await client.get(QUEUE, params={"limit": bad}, headers=auth)).status_code == 422


async def test_queue_lists_uncertain_and_low_rated_answers_least_sure_first(
    client: httpx.AsyncClient, db: Database
) -> None:
    low, _good, lowest = await phone_answers(client, [2, 5, 1])
    device_id, auth = await reviewer(client, db)
    sure = web_answer(db, device_id, 0.5)
    unsure = web_answer(db, device_id, 0.8)
    web_answer(db, device_id, 0.05)  # confident: not offered
    body = (await client.get(QUEUE, headers=auth)).json()
    assert [i["interaction_id"] for i in body["items"]] == [unsure, sure, lowest, low]
    first = body["items"][0]
    assert first["reasons"] == ["80% of tokens had p < 0.3"]
    assert (first["source"], first["prompt"], first["response"]) == (
        "web",
        "What is 7 times 8?",
        "54",
    )
    assert first["low_p_share"] == 0.8 and first["mean_entropy"] == 1.5
    assert first["score"] == pytest.approx(0.95)
    phone = body["items"][2]
    assert phone["reasons"] == ["rated 1 of 5"] and phone["low_p_share"] is None
    assert phone["score"] == 0 and phone["rating"] == 1
    limited = await client.get(QUEUE, params={"limit": "1"}, headers=auth)
    assert [i["interaction_id"] for i in limited.json()["items"]] == [unsure]


async def test_a_correction_is_stored_as_a_review_and_leaves_the_queue(
    client: httpx.AsyncClient, db: Database
) -> None:
    [answer] = await phone_answers(client, [1])
    device_id, auth = await reviewer(client, db)
    resp = await client.post(
        f"/api/review/{answer}", json={"correction": "  The capital is Paris.  "}, headers=auth
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["interaction_id"] == answer and body["correction_source"] == "review"
    assert body["reviewed_by"] == device_id
    with db.transaction() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == uuid.UUID(answer)))
        assert row is not None
        assert (row.correction, row.correction_source, row.reviewed_by) == (
            "The capital is Paris.",
            "review",
            device_id,
        )
    assert (await client.get(QUEUE, headers=auth)).json() == {"items": []}
    again = await client.post(f"/api/review/{answer}", json={"correction": "No."}, headers=auth)
    assert again.status_code == 409 and "corrected by a reviewer" in again.json()["detail"]


async def test_bad_review_requests_are_4xx_never_5xx(
    client: httpx.AsyncClient, db: Database
) -> None:
    [answer] = await phone_answers(client, [1])
    path = f"/api/review/{answer}"
    good = {"correction": "Fine."}
    assert (await client.post(path, json=good)).status_code == 401
    _, plain = await register(client)
    assert (await client.post(path, json=good, headers=plain)).status_code == 403
    _, auth = await reviewer(client, db)
    cases: list[tuple[str, object, int]] = [
        (f"/api/review/{uuid.uuid4()}", good, 404),
        ("/api/review/not-a-uuid", good, 422),
        ("/api/review/queue", good, 422),
        (path, {"correction": ""}, 422),
        (path, {"correction": "   \n"}, 422),
        (path, {"correction": "a\x00b"}, 422),
        (path, {"correction": 5}, 422),
        (path, {"correction": "x" * 16_001}, 422),
        (path, {}, 422),
        (path, [], 422),
    ]
    for url, body, status in cases:
        resp = await client.post(url, json=body, headers=auth)
        assert resp.status_code == status, (url, body, resp.text)
        assert "detail" in resp.json()
    text = await client.post(
        path, content=b"correction", headers={**auth, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    huge = await client.post(
        path,
        content=b'{"correction": "' + b"x" * 300_000 + b'"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    broken = await client.post(
        path,
        content=b'{"correction": "\xff"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    with db.transaction() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == uuid.UUID(answer)))
        assert row is not None and row.correction is None


@pytest.mark.overrides(max_correction_chars=10)
async def test_the_correction_limit_is_the_uploads(tuned: httpx.AsyncClient, db: Database) -> None:
    [answer] = await phone_answers(tuned, [1])
    _, auth = await reviewer(tuned, db)
    resp = await tuned.post(f"/api/review/{answer}", json={"correction": "x" * 11}, headers=auth)
    assert resp.status_code == 422 and resp.json()["detail"].startswith("correction: at most 10")


async def test_role_grants_through_the_cli_apply_to_the_next_request(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", db.url.render_as_string(hide_password=False))
    device_id, auth = await register(client)
    assert (await client.get(QUEUE, headers=auth)).status_code == 403
    assert cli(["devices", "grant", "reviewer", device_id, "--actor", "alice"]) == 0
    assert f"✓ {device_id}: reviewer" in capsys.readouterr().out
    assert (await client.get(QUEUE, headers=auth)).status_code == 200
    assert cli(["devices", "list", "--role", "reviewer"]) == 0
    assert device_id in capsys.readouterr().out
    assert cli(["devices", "revoke-role", device_id]) == 0
    assert (await client.get(QUEUE, headers=auth)).status_code == 403
    assert cli(["devices", "grant", "reviewer", "no-such-device"]) == 1
    with db.transaction() as session:
        events = list(session.scalars(select(DataAuditEvent).order_by(DataAuditEvent.id)))
    assert [(e.action, e.subject) for e in events] == [
        ("role", f"role reviewer: {device_id}"),
        ("role", f"role user: {device_id}"),
    ]
    assert events[0].actor == "alice"


async def test_openapi_documents_the_review_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    post = paths["/api/review/{interaction_id}"]["post"]
    assert {"401", "403", "404", "409", "413", "415", "422", "429"} <= set(post["responses"])
    assert post["security"] == [{"HTTPBearer": []}]
    assert {"401", "403", "422"} <= set(paths["/api/review/queue"]["get"]["responses"])
