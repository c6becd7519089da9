"""Health, Prometheus metrics, and the import boundary of the service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from tests.serving.conftest import REPO_ROOT, interaction, register, upload

pytestmark = pytest.mark.anyio


async def test_health_reports_schema_and_version(client: httpx.AsyncClient, db: Database) -> None:
    resp = await client.get("/api/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["schema_revision"] == body["schema_head"] == db.head_revision()
    assert body["schema_current"] is True
    assert body["version"]


async def test_health_is_503_when_database_unreachable(
    settings: ServiceSettings, artifact_root: Path
) -> None:
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    app = create_app(settings=settings, database=down, artifact_root=artifact_root)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/api/health")
    assert resp.status_code == 503
    assert resp.json()["database"] == "unreachable"


async def test_health_degraded_when_schema_behind(
    tmp_path: Path, settings: ServiceSettings, artifact_root: Path
) -> None:
    fresh = Database(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    app = create_app(settings=settings, database=fresh, artifact_root=artifact_root)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = (await c.get("/api/health")).json()
    assert body["status"] == "degraded" and body["schema_revision"] is None


def sample(text: str, name: str) -> float:
    """The value of one Prometheus sample line (name with labels) in a text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


async def test_metrics_count_uploads_duplicates_and_rejects(client: httpx.AsyncClient) -> None:
    device_id, auth = await register(client)
    items = [interaction() for _ in range(3)]
    await client.post("/api/training/feedback", json=upload(device_id, items), headers=auth)
    await client.post("/api/training/feedback", json=upload(device_id, items[:2]), headers=auth)
    await client.post("/api/training/feedback", json=upload(device_id, [interaction()]))
    bad = upload(device_id, [interaction(rating=9)])
    await client.post("/api/training/feedback", json=bad, headers=auth)

    await client.get("/api/models/mobile/latest")
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert sample(text, "distillery_feedback_uploads_total") == 2
    assert sample(text, "distillery_feedback_interactions_accepted_total") == 3
    assert sample(text, "distillery_feedback_duplicates_total") == 2
    assert sample(text, 'distillery_feedback_rejects_total{reason="unauthorized"}') == 1
    assert sample(text, 'distillery_feedback_rejects_total{reason="invalid"}') == 1
    route = 'method="POST",route="/api/training/feedback",status="200"'
    assert sample(text, f"distillery_http_request_duration_seconds_count{{{route}}}") == 2
    latest = 'method="GET",route="/api/models/mobile/latest",status="200"'
    assert sample(text, f"distillery_http_request_duration_seconds_count{{{latest}}}") == 1


def test_service_imports_no_ml_libraries() -> None:
    code = (
        "import sys, serving.app\n"
        "bad = [m for m in ('torch', 'transformers', 'trl', 'peft', 'prefect', 'datasets',"
        " 'llama_cpp', 'numpy', 'chat_runtime')"
        " if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
