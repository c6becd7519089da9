"""The latest-manifest phones poll, and the per-student version history."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from tests.serving.catalog_rows import add_version, write_artifact

pytestmark = pytest.mark.anyio

LATEST = "/api/models/mobile/latest"


def quantized_files(root: Path, student: str, version: int) -> list[dict]:
    base = f"models/{student}/v{version}/model"
    return [
        write_artifact(root, f"{base}.F16.gguf", b"f16" * 100),
        write_artifact(root, f"{base}.Q8_0.gguf", b"q8" * 50),
        write_artifact(root, f"{base}.Q4_K_M.gguf", b"q4" * 20),
    ]


async def test_empty_registry_is_200_with_no_models(client: httpx.AsyncClient) -> None:
    resp = await client.get(LATEST)
    assert resp.status_code == 200
    assert resp.json() == {"channel": "stable", "models": []}
    assert resp.headers["etag"].startswith('"')


async def test_stable_release_with_preferred_quantization(
    artifact_root: Path, client: httpx.AsyncClient, db: Database, settings: ServiceSettings
) -> None:
    root = artifact_root
    files = quantized_files(root, "smollm2-student", 2)
    hub_file = {
        "name": "extra.gguf",
        "url": "https://hub.example/x.gguf",
        "size": 9,
        "sha256": "0" * 64,
        "quantization": "Q4_0",
    }
    add_version(db, "smollm2-student", 2, [*files, hub_file])
    add_version(db, "tiny-student", 1, quantized_files(root, "tiny-student", 1)[:2])
    add_version(
        db, "pending-student", 1, quantized_files(root, "pending-student", 1), status="pending"
    )
    add_version(db, "smollm2-student", 3, files, stable=False)  # published, not promoted

    models = (await client.get(LATEST)).json()["models"]
    assert [m["student"] for m in models] == ["smollm2-student", "tiny-student"]
    smol, tiny = models
    q4 = files[2]
    assert smol["version"] == 2
    assert smol["download_url"] == f"http://testserver/api/artifacts/{q4['path']}"
    assert (smol["size"], smol["sha256"], smol["quantization"]) == (
        q4["size"],
        q4["sha256"],
        "Q4_K_M",
    )
    assert smol["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert smol["released_at"] == "2026-11-01T12:00:00+00:00"
    assert smol["min_app_version"] == "1.0"
    assert [f["url"] for f in smol["files"]][-1] == "https://hub.example/x.gguf"
    assert len(smol["files"]) == 4
    assert tiny["quantization"] == "Q8_0"  # no Q4 file: next in the preference order

    download = await client.get(smol["download_url"])
    assert download.status_code == 200 and download.content == b"q4" * 20


async def test_etag_304_and_change_on_promotion(
    artifact_root: Path, client: httpx.AsyncClient, db: Database, settings: ServiceSettings
) -> None:
    root = artifact_root
    add_version(db, "s", 1, quantized_files(root, "s", 1))
    first = await client.get(LATEST)
    etag = first.headers["etag"]
    again = await client.get(LATEST, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = await client.get(LATEST, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304

    add_version(db, "s", 2, quantized_files(root, "s", 2))
    moved = await client.get(LATEST, headers={"If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["etag"] != etag
    assert moved.json()["models"][0]["version"] == 2


async def test_update_available_for_current_version(
    artifact_root: Path, client: httpx.AsyncClient, db: Database, settings: ServiceSettings
) -> None:
    add_version(db, "s", 4, quantized_files(artifact_root, "s", 4))
    behind = (await client.get(LATEST, params={"current_version": "3", "device_id": "d"})).json()
    assert behind["update_available"] is True and behind["models"][0]["update_available"]
    current = (await client.get(LATEST, params={"current_version": 4, "student": "s"})).json()
    assert current["update_available"] is False
    other = (await client.get(LATEST, params={"student": "nobody"})).json()
    assert other["models"] == []
    bad = await client.get(LATEST, params={"current_version": "v4"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("current_version")


async def test_public_base_url_and_cached_manifest(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "art"
    settings = ServiceSettings(
        _env_file=None,
        public_base_url="https://models.example.com/",
        manifest_cache_seconds=3600,
        quantization_preference="F16,Q8_0",
    )
    app: FastAPI = create_app(settings=settings, database=db, artifact_root=root)
    add_version(db, "s", 1, quantized_files(root, "s", 1))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as c:
        first = (await c.get(LATEST)).json()["models"][0]
        assert first["download_url"].startswith("https://models.example.com/api/artifacts/")
        assert first["quantization"] == "F16"
        # Within the cache period a promotion is not looked up yet: no query per poll.
        add_version(db, "s", 2, quantized_files(root, "s", 2))
        assert (await c.get(LATEST)).json()["models"][0]["version"] == 1


async def test_version_history_with_audit_trail(
    artifact_root: Path, client: httpx.AsyncClient, db: Database, settings: ServiceSettings
) -> None:
    root = artifact_root
    add_version(db, "s", 1, quantized_files(root, "s", 1))
    add_version(db, "s", 2, quantized_files(root, "s", 2))
    add_version(db, "s", 3, [], status="rejected", stable=False)
    resp = await client.get("/api/models/s/versions")
    assert resp.status_code == 200
    body = resp.json()
    assert body["channels"] == {"stable": 2}
    assert [(v["version"], v["status"]) for v in body["versions"]] == [
        (3, "rejected"),
        (2, "published"),
        (1, "published"),
    ]
    assert body["versions"][1]["channels"] == ["stable"]
    assert body["versions"][1]["metrics"] == {"test.perplexity": 9.5, "test.bleu": 12.0}
    assert [(e["from_version"], e["to_version"]) for e in body["events"]] == [(None, 1), (1, 2)]
    missing = await client.get("/api/models/nobody/versions")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
