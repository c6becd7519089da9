"""Publish flow (real Prefect runs), the models/rollback CLI, and the service seeing it at once.

The API part builds the real service (`serving.app.create_app`) on the same database and
artifact root and talks to it through httpx's ASGITransport.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import main
from flows.publish import publish_flow
from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database
from storage.registry import LocalRegistry
from storage.repo import versions as version_repo
from tests.storage.registry.conftest import make_export, make_spec

METADATA = {
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "teacher": "Qwen/Qwen2.5-7B-Instruct",
}
PROMOTE = {"promote": True, "reasons": ["all checks passed"]}
REJECT = {"promote": False, "reasons": ["bleu regressed"]}
GOOD, WORSE = {"test": {"bleu": 20.0}}, {"test": {"bleu": 9.0}}


@pytest.fixture
def harness(prefect_harness: None) -> None:
    """The session's Prefect test server: nested harnesses share one server and break it."""


@pytest.fixture
def env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Local registry, artifact root and database for tasks, CLI and service alike."""
    url = db.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", url)
    return url


def exported(directory: Path) -> list[dict[str, Any]]:
    spec = make_export(directory, "smol-Q8_0.gguf")
    return [{"path": str(spec.path), "quantization": "Q8_0"}]


def test_flow_publishes_and_promotes_only_when_the_gate_says_so(
    harness: None, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = publish_flow(
        "smol", exported(tmp_path / "a"), METADATA, {"test": {"bleu": 20.0}}, PROMOTE, env
    )
    assert first.published.version == 1
    assert first.promotion is not None and first.promotion.to_version == 1
    second = publish_flow(
        "smol", exported(tmp_path / "b"), METADATA, {"test": {"bleu": 9.0}}, REJECT, env
    )
    assert second.published.status == "published" and second.promotion is None

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["STUDENT", "VERSION", "STATUS", "CHANNELS"]
    assert out[1].split()[:4] == ["smol", "2", "published", "-"]
    assert out[2].split()[:4] == ["smol", "1", "published", "stable"]


def test_cli_rollback_and_history(env: str, db: Database, tmp_path: Path, capsys: Any) -> None:
    registry = LocalRegistry(db, tmp_path / "artifacts")
    for i in (1, 2):
        registry.publish(make_spec("smol"), [make_export(tmp_path / str(i))])
        registry.promote("smol", i, reason=f"gate {i}")
    assert main(["rollback", "smol", "--reason", "crashes on Pixel 6", "--actor", "bob"]) == 0
    assert capsys.readouterr().out.strip() == "✓ smol stable: v2 -> v1"

    assert main(["models", "history", "smol"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "WHEN",
        "(UTC)",
        "CHANNEL",
        "ACTION",
        "FROM",
        "TO",
        "ACTOR",
        "REASON",
    ]
    assert [line.split()[2:7] for line in lines[1:]] == [
        ["stable", "promote", "-", "v1", "pipeline"],
        ["stable", "promote", "v1", "v2", "pipeline"],
        ["stable", "rollback", "v2", "v1", "bob"],
    ]
    assert lines[-1].endswith("crashes on Pixel 6")

    with db.transaction(write=True) as session:
        version_repo.create_pending_version(
            session=session, student="smol", version=3, files=[], base_model="b"
        )
    assert main(["rollback", "smol", "--to", "3"]) == 2
    assert "version 3 is 'pending'" in capsys.readouterr().err
    assert main(["rollback", "nobody"]) == 2
    assert "has no 'stable' channel" in capsys.readouterr().err


async def _latest(client: httpx.AsyncClient, etag: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return await client.get("/api/models/mobile/latest", headers=headers)


def test_service_reflects_promotion_and_rollback_at_once(
    env: str, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    registry = LocalRegistry(db, root)
    published = [
        registry.publish(make_spec("smol"), [make_export(tmp_path / str(i), "smol-Q8_0.gguf")])
        for i in (1, 2)
    ]
    settings = ServiceSettings(manifest_cache_seconds=0, allowed_hosts=["svc"])
    app = create_app(settings, database=db, artifact_root=root)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            nothing = await _latest(client)
            assert nothing.json()["models"] == []

            registry.promote("smol", 1)
            one = await _latest(client)
            (model,) = one.json()["models"]
            assert (model["version"], model["sha256"]) == (1, published[0].files[0]["sha256"])
            assert (await _latest(client, one.headers["etag"])).status_code == 304
            body = (await client.get(model["download_url"])).content
            assert hashlib.sha256(body).hexdigest() == model["sha256"]

            registry.promote("smol", 2)
            two = await _latest(client, one.headers["etag"])
            assert two.status_code == 200 and two.headers["etag"] != one.headers["etag"]
            assert two.json()["models"][0]["version"] == 2

            registry.rollback("smol", reason="bad answers")
            back = await _latest(client, two.headers["etag"])
            assert back.status_code == 200 and back.headers["etag"] != two.headers["etag"]
            assert back.json()["models"][0]["version"] == 1

    asyncio.run(scenario())


def test_hub_token_comes_from_a_prefect_secret_block_when_hf_token_is_unset(
    harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    from storage.registry import RegistrySettings
    from tasks.publish import hub_token

    Secret(value="hf_from_block").save("distillery-hub-token", overwrite=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    settings = RegistrySettings(registry="hub", hub_token_secret="distillery-hub-token")
    assert hub_token(settings) == "hf_from_block"
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert hub_token(settings) == "hf_from_env"
    assert hub_token(RegistrySettings(registry="hub", hub_token_secret=None)) == "hf_from_env"
