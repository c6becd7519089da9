"""The web page's files and JSON: served offline (no CDN), typed in the OpenAPI document."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from serving.routes.web import WEB_DIR
from storage.db import Database
from storage.repo.evaluations import add_evaluation
from tests.serving.catalog_rows import add_version
from tests.serving.conftest import interaction, register, upload
from tests.tasks.prepare.conftest import insert, make_row

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
    for path in (
        "/v1/models",
        "/api/web/quality",
        "/api/web/feedback-volume",
        "/api/web/live-quality",
    ):
        assert "get" in doc["paths"][path]
    assert "/web" not in doc["paths"] and "/" not in doc["paths"]


async def test_live_quality_per_version_and_day(client: httpx.AsyncClient, db: Database) -> None:
    """One series per version, a point per UTC day, each metric with its interval."""
    add_version(db, "smol", 2, [])  # v2 is what the stable channel serves
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=d) for d in (2, 1, 0)]
    v1 = [(days[0], 5), (days[0], 1), (days[1], 2)]
    v2 = [(days[1], 5), (days[1], 4), (days[2], 5)]
    n = 0
    for version, answers in (("1", v1), ("2", v2)):
        for when, rating in answers:
            n += 1
            row = make_row(n, model_name="smol", model_version=version, rating=rating)
            insert(db, [row], received_at=when)
    insert(db, [make_row(99, model_name="other", model_version="7")], received_at=days[2])
    insert(db, [make_row(98, model_name="smol", model_version="10")], received_at=days[2])
    insert(
        db,
        [make_row(97, model_name="smol", model_version="1")],
        received_at=today - timedelta(days=40),
    )

    body = (await client.get("/api/web/live-quality", params={"student": "smol", "days": 3})).json()
    assert body["days"] == 3 and body["student"] == "smol"
    assert [m["name"] for m in body["metrics"]] == [
        "mean_rating",
        "thumbs_down",
        "corrections",
        "answer_chars",
        "mean_entropy",
    ]
    assert body["metrics"][0]["worse_when"] == "lower" and body["metrics"][3]["worse_when"] is None
    # Versions in number order ("10" after "2"); only v2 is stable; the 40-day-old row is out.
    assert [(v["version"], v["stable"], v["interactions"]) for v in body["versions"]] == [
        ("1", False, 3),
        ("2", True, 3),
        ("10", False, 1),
    ]
    first = body["versions"][0]["days"]
    assert [d["day"] for d in first] == [days[0].date().isoformat(), days[1].date().isoformat()]
    assert first[0]["interactions"] == 2 and first[0]["mean_rating"]["value"] == 3.0
    assert first[0]["mean_rating"]["n"] == 2
    down = first[0]["thumbs_down"]
    assert down["value"] == 0.5 and 0 < down["low"] < 0.5 < down["high"] < 1
    assert first[1]["thumbs_down"]["value"] == 1.0 and first[0]["mean_entropy"] is None
    assert first[0]["corrections"]["value"] == 0.0
    all_students = (await client.get("/api/web/live-quality", params={"days": 3})).json()
    assert {v["student"] for v in all_students["versions"]} == {"smol", "other"}
    month = (await client.get("/api/web/live-quality", params={"student": "smol"})).json()
    assert month["days"] == 30 and month["versions"][0]["interactions"] == 3
    wide = await client.get("/api/web/live-quality", params={"student": "smol", "days": 41})
    assert wide.json()["versions"][0]["interactions"] == 4
    none = await client.get("/api/web/live-quality", params={"student": "nobody"})
    assert none.json()["versions"] == []


@pytest.mark.parametrize(
    "params", [{"days": "0"}, {"days": "1_0"}, {"student": ""}, {"student": "a\x00"}]
)
async def test_live_quality_refuses_bad_queries(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    resp = await client.get("/api/web/live-quality", params=params)
    assert resp.status_code == 422, resp.text
