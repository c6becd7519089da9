"""Web chat on the published student: OpenAI-compatible, streamed, measured, stored, bounded."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from storage.models import Interaction
from tests.serving.catalog_rows import add_version, write_artifact
from tests.serving.chat_support import STUDENT, chat_server, publish_smollm2, register, sse_events

pytestmark = pytest.mark.anyio
__all__ = ["chat_server"]  # the live-server fixture, used below

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
async def chat_app(
    artifact_root: Path, db: Database, settings: ServiceSettings
) -> AsyncIterator[FastAPI]:
    """The service with SmolLM2 published as the stable student; its workers stopped after."""
    publish_smollm2(db, artifact_root)
    tuned = settings.model_copy(update={"chat_max_tokens": 64})
    app = create_app(settings=tuned, database=db, artifact_root=artifact_root)
    yield app
    await app.state.service.chat.aclose()  # ASGITransport runs no lifespan


@pytest.fixture
async def chat(chat_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=chat_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def device(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    resp = await client.post("/api/devices", json={"platform": "web", "app_version": "t"})
    body = resp.json()
    return body["device_id"], {"Authorization": f"Bearer {body['token']}"}


def stored(db: Database, interaction_id: str) -> Interaction:
    with db.transaction() as session:
        row = session.scalar(select(Interaction).where(Interaction.id == uuid.UUID(interaction_id)))
    assert row is not None, f"interaction {interaction_id} is not stored"
    return row


async def test_models_lists_the_stable_student(chat: httpx.AsyncClient) -> None:
    body = (await chat.get("/v1/models")).json()
    assert body["object"] == "list"
    [card] = body["data"]
    assert (card["id"], card["version"], card["quantization"]) == (STUDENT, 1, "Q4_1")
    assert card["file_name"].endswith(".gguf")


async def test_streamed_chat_carries_uncertainty_and_is_stored_then_rated(
    chat: httpx.AsyncClient, db: Database
) -> None:
    device_id, auth = await device(chat)
    body = {"messages": PROMPT, "stream": True, "max_tokens": 24, "seed": 7}
    resp = await chat.post("/v1/chat/completions", json=body, headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert (resp.headers["x-distillery-student"], resp.headers["x-distillery-version"]) == (
        STUDENT,
        "1",
    )
    lines = resp.text.splitlines()
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    events = sse_events(lines)
    head, tokens, last = events[0], [e for e in events if "token" in e], events[-1]
    assert head["choices"][0]["delta"]["role"] == "assistant"
    assert (head["student"], head["version"], head["system_fingerprint"]) == (
        STUDENT,
        1,
        f"{STUDENT}:v1",
    )
    assert tokens, "no token streamed"
    for i, ev in enumerate(tokens):
        assert ev["token"]["index"] == i
        assert 0 < ev["token"]["p"] <= 1 and ev["token"]["entropy"] >= 0
        assert ev["choices"][0]["delta"]["content"] == ev["token"]["text"]
    answer = "".join(e["token"]["text"] for e in tokens)
    summary = last["uncertainty"]
    assert last["usage"]["completion_tokens"] == len(tokens) == summary["tokens"]
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    mean_h = sum(e["token"]["entropy"] for e in tokens) / len(tokens)
    assert summary["mean_entropy"] == pytest.approx(mean_h, abs=1e-3)
    low = sum(e["token"]["p"] < 0.3 for e in tokens) / len(tokens)
    assert summary["low_p_share"] == pytest.approx(low, abs=1e-3)

    row = stored(db, last["interaction_id"])
    assert (row.source, row.device_id, row.model_name, row.model_version) == (
        "web",
        device_id,
        STUDENT,
        "1",
    )
    assert (row.prompt, row.response, row.rating) == (PROMPT[0]["content"], answer, None)
    assert row.uncertainty == summary

    # Rated through the phones' route: same id, a later updated_at.
    later = (datetime.fromisoformat(last["created_at"]) + timedelta(seconds=1)).isoformat()
    item = {
        "id": last["interaction_id"],
        "model_name": STUDENT,
        "model_version": "1",
        "prompt": last["stored_prompt"],
        "response": answer,
        "rating": 2,
        "correction": "Paris is the capital of France.",
        "created_at": last["created_at"],
        "updated_at": later,
    }
    upload = {"device_id": device_id, "interactions": [item], "timestamp": later}
    result = await chat.post("/api/training/feedback", json=upload, headers=auth)
    assert result.status_code == 200, result.text
    assert result.json()["updated"] == 1
    row = stored(db, last["interaction_id"])
    assert (row.rating, row.correction) == (2, "Paris is the capital of France.")
    assert row.uncertainty == summary and row.source == "web"


async def test_whole_answer_with_openai_logprobs(chat: httpx.AsyncClient, db: Database) -> None:
    _, auth = await device(chat)
    body = {"messages": PROMPT, "max_tokens": 12, "logprobs": True, "top_logprobs": 3}
    resp = await chat.post("/v1/chat/completions", json=body, headers=auth)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["object"] == "chat.completion"
    assert (out["model"], out["student"], out["version"]) == (STUDENT, STUDENT, 1)
    content = out["choices"][0]["logprobs"]["content"]
    assert len(content) == len(out["tokens"]) == out["usage"]["completion_tokens"] > 0
    for entry, tok in zip(content, out["tokens"], strict=True):
        assert len(entry["top_logprobs"]) == 3
        assert tok["p"] == pytest.approx(math.exp(entry["logprob"]), rel=1e-6)
        # the sampled token is never more likely than the most likely alternative
        assert entry["logprob"] <= entry["top_logprobs"][0]["logprob"] + 1e-6
    assert out["choices"][0]["message"]["content"] == "".join(t["text"] for t in out["tokens"])
    assert stored(db, out["interaction_id"]).uncertainty == out["uncertainty"]


async def test_requests_are_bounded(chat: httpx.AsyncClient) -> None:
    _, auth = await device(chat)
    url = "/v1/chat/completions"
    assert (await chat.post(url, json={"messages": PROMPT})).status_code == 401
    too_many = await chat.post(url, json={"messages": PROMPT, "max_tokens": 65}, headers=auth)
    assert too_many.status_code == 422
    assert too_many.json()["detail"].startswith("max_tokens: must be at most 64")
    long = [{"role": "user", "content": "x" * 8001}]
    resp = await chat.post(url, json={"messages": long}, headers=auth)
    assert resp.status_code == 413 and "8001 characters" in resp.json()["detail"]
    unknown = await chat.post(url, json={"model": "nope", "messages": PROMPT}, headers=auth)
    assert unknown.status_code == 404 and STUDENT in unknown.json()["detail"]
    bad_role = await chat.post(
        url, json={"messages": [{"role": "x", "content": "y"}]}, headers=auth
    )
    assert bad_role.status_code == 422


async def test_no_published_student_is_404(client: httpx.AsyncClient) -> None:
    _, auth = await device(client)
    resp = await client.post("/v1/chat/completions", json={"messages": PROMPT}, headers=auth)
    assert resp.status_code == 404 and "no student is published" in resp.json()["detail"]
    assert (await client.get("/v1/models")).json()["data"] == []


def test_live_service_answers_while_generating_and_refuses_a_second_generation(
    chat_server: tuple[str, int],
) -> None:
    base_url, _ = chat_server
    with httpx.Client(base_url=base_url, timeout=120) as client:
        _, auth = register(base_url, client)
        # Greedy counting: a long answer, so the first stream is still running below.
        count = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
        body = {"messages": count, "stream": True, "max_tokens": 120, "temperature": 0}
        with client.stream("POST", "/v1/chat/completions", json=body, headers=auth) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert '"role":"assistant"' in first
            # the phone-facing API answers while the model generates in its worker
            assert client.get("/api/health").status_code == 200
            busy = client.post("/v1/chat/completions", json=body, headers=auth)
            assert busy.status_code == 429 and busy.headers["retry-after"] == "2"
            rest = list(lines)
        assert "data: [DONE]" in rest
        # the slot is free again once the stream ended
        again = client.post(
            "/v1/chat/completions", json={"messages": PROMPT, "max_tokens": 4}, headers=auth
        )
        assert again.status_code == 200, again.text
        # a client that leaves mid-stream gives its slot back too (once the server notices:
        # a well-behaved client retries after Retry-After)
        with client.stream("POST", "/v1/chat/completions", json=body, headers=auth) as stream:
            next(line for line in stream.iter_lines() if line.startswith("data: "))
        for _ in range(30):
            after = client.post(
                "/v1/chat/completions", json={"messages": PROMPT, "max_tokens": 4}, headers=auth
            )
            if after.status_code != 429:
                break
            time.sleep(int(after.headers["retry-after"]))
        assert after.status_code == 200, after.text


async def test_a_file_llama_cpp_cannot_load_is_503_naming_why(
    artifact_root: Path,
    client: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    settings: ServiceSettings,
) -> None:
    root = artifact_root
    add_version(db, "broken", 1, [write_artifact(root, "models/broken/1/m.Q8_0.gguf", b"x" * 64)])
    _, auth = await device(client)
    try:
        resp = await client.post("/v1/chat/completions", json={"messages": PROMPT}, headers=auth)
    finally:
        await app.state.service.chat.aclose()
    assert resp.status_code == 503
    assert resp.json()["detail"].startswith("the chat runtime for broken v1 exited at start")
