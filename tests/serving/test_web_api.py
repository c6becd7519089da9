"""The web page's files and JSON: served offline (no CDN), typed in the OpenAPI document."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from serving.routes.web import WEB_DIR
from storage.db import Database
from storage.repo.evaluations import add_evaluation
from tests.serving.catalog_rows import add_version
from tests.serving.conftest import interaction, register, upload

pytestmark = pytest.mark.anyio


async def test_page_and_assets_are_served_and_load_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/web/"
    page = await client.get("/web/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == ["app.js", "charts.js", "style.css"]
    for name in sorted(p.name for p in WEB_DIR.iterdir()):
        body = (await client.get(f"/web/{name}")).text
        assert not re.search(r"https?://", body), f"{name} references another origin"


async def test_feedback_volume_per_day_and_source(client: httpx.AsyncClient) -> None:
    device_id, auth = await register(client)
    items = [interaction(), interaction(rating=None, correction="Better.")]
    resp = await client.post("/api/training/feedback", json=upload(device_id, items), headers=auth)
    assert resp.status_code == 200
    body = (await client.get("/api/web/feedback-volume", params={"days": 7})).json()
    today = datetime.now(UTC).date().isoformat()
    assert body == {
        "days": 7,
        "volume": [
            {"day": today, "source": "phone", "interactions": 2, "rated": 1, "corrected": 1}
        ],
    }
    bad = await client.get("/api/web/feedback-volume", params={"days": 0})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("days:")


async def test_quality_over_versions(client: httpx.AsyncClient, db: Database) -> None:
    v1 = add_version(db, "smol", 1, [])
    v2 = add_version(db, "smol", 2, [], stable=False)
    with db.transaction(write=True) as session:
        for vid, ppl in ((v1, 12.5), (v2, 11.0)):
            add_evaluation(
                session=session,
                student="smol",
                label="candidate",
                eval_set="new",
                metrics={"perplexity": ppl, "ok": True},
                model_version_id=vid,
            )
    body = (await client.get("/api/web/quality")).json()
    assert body == {
        "students": [
            {
                "student": "smol",
                "stable_version": 1,
                "scores": [
                    {
                        "version": 1,
                        "eval_set": "new",
                        "label": "candidate",
                        "metrics": {"perplexity": 12.5},
                    },
                    {
                        "version": 2,
                        "eval_set": "new",
                        "label": "candidate",
                        "metrics": {"perplexity": 11.0},
                    },
                ],
            }
        ]
    }


async def test_openapi_documents_the_chat_and_web_routes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["operationId"] == "chat_completions"
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ChatRequest"
    )
    ok = chat["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/event-stream"}
    assert {"401", "413", "422", "429", "503"} <= set(chat["responses"])
    assert chat["security"] == [{"HTTPBearer": []}]
    schemas = doc["components"]["schemas"]
    assert {"student", "version", "interaction_id", "uncertainty", "tokens"} <= set(
        schemas["ChatCompletion"]["properties"]
    )
    for path in ("/v1/models", "/api/web/quality", "/api/web/feedback-volume"):
        assert "get" in doc["paths"][path]
    assert "/web" not in doc["paths"] and "/" not in doc["paths"]
