"""The manifest as a phone sees it with adapters: base once, adapter per version, agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.settings import ServiceSettings
from storage.db import Database
from storage.registry import FileSpec, LocalRegistry, VersionSpec
from storage.repo.catalog import agent_channel
from tests.serving.conftest import interaction, register

pytestmark = pytest.mark.anyio

LATEST = "/api/models/mobile/latest"
STUDENT = "smollm2-pruned-student"
BASE_BYTES = b"GGUF-base" * 400


def _files(tmp: Path, tag: str, *, adapter_bytes: bytes, base: bytes = BASE_BYTES) -> list:
    """A merged file, the shared base and this version's adapter, as an export writes them."""
    tmp.mkdir(parents=True, exist_ok=True)
    merged, base_path, adapter = tmp / f"m-{tag}.gguf", tmp / "base.gguf", tmp / f"a-{tag}.gguf"
    merged.write_bytes(b"GGUF-merged-" + tag.encode() * 300)
    base_path.write_bytes(base)
    adapter.write_bytes(adapter_bytes)
    return [
        FileSpec(merged, "Q4_K_M", name=f"{STUDENT}-Q4_K_M.gguf"),
        FileSpec(
            base_path, "Q4_K_M", name=f"{STUDENT}-base-Q4_K_M.gguf", role="base",
            meta={"revision": "gguf:SmolLM2-135M-Instruct.Q4_1.gguf:drop-12-17"},
        ),
        FileSpec(
            adapter, "F16", name=f"{STUDENT}-adapter-F16.gguf", role="adapter",
            meta={"scale": 1.0, "lora_rank": 16, "lora_alpha": 32.0},
        ),
    ]  # fmt: skip


@pytest.fixture
def registry(artifact_root: Path, db: Database, settings: ServiceSettings) -> LocalRegistry:
    return LocalRegistry(db, artifact_root)


def _publish(registry: LocalRegistry, files: list, agent: str | None = None) -> int:
    spec = VersionSpec(student=STUDENT, base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
                       base_revision="drop-12-17", agent=agent)  # fmt: skip
    version = registry.publish(spec, files).version
    channel = agent_channel("stable", agent) if agent else "stable"
    registry.promote(STUDENT, version, channel=channel, reason="gate passed")
    return version


async def test_phone_with_the_base_fetches_only_the_adapter(
    client: httpx.AsyncClient, registry: LocalRegistry, tmp_path: Path
) -> None:
    v1 = _publish(registry, _files(tmp_path / "v1", "1", adapter_bytes=b"lora-1" * 20))
    v2 = _publish(registry, _files(tmp_path / "v2", "2", adapter_bytes=b"lora-2" * 21))
    [entry] = (await client.get(LATEST)).json()["models"]
    assert (entry["version"], entry["quantization"]) == (v2, "Q4_K_M")
    assert entry["file_name"] == f"{STUDENT}-Q4_K_M.gguf"  # the merged file stays the default
    base, adapter = entry["base"], entry["adapter"]
    assert base["size"] == len(BASE_BYTES) and base["role"] == "base"
    assert base["revision"] == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf:drop-12-17"
    assert adapter["size"] == 6 * 21 and adapter["scale"] == 1.0 and adapter["lora_rank"] == 16
    assert {f["role"] for f in entry["files"]} == {"merged", "base", "adapter"}
    # The base is published once: v1 and v2 point at the same file.
    history = registry.versions(STUDENT)
    assert [v.version for v in history] == [v2, v1]
    base_paths = {
        f["path"] for v in (v1, v2) for f in _row_files(registry, v) if f.get("role") == "base"
    }
    assert len(base_paths) == 1 and base_paths.pop().startswith(f"models/{STUDENT}/base/")
    assert len(list((registry.artifact_root / "models" / STUDENT / "base").rglob("*.gguf"))) == 1

    # A phone on v1 that holds this base: only the adapter.
    params = {"current_version": v1, "base_sha256": base["sha256"].upper()}
    delta = (await client.get(LATEST, params=params)).json()["models"][0]
    assert delta["fetch"] == {
        "kind": "adapter",
        "files": [adapter["name"]],
        "bytes": adapter["size"],
        "full_bytes": entry["size"],
    }
    assert (await client.get(adapter["url"])).content == b"lora-2" * 21
    assert (await client.get(base["url"])).content == BASE_BYTES
    # Without that base (another revision, or none): the merged file.
    other = {"current_version": v1, "base_sha256": "ab" * 32}
    fetch = (await client.get(LATEST, params=other)).json()["models"][0]["fetch"]
    assert fetch["kind"] == "merged" and fetch["bytes"] == entry["size"]
    fetch = (await client.get(LATEST, params={"current_version": v1})).json()["models"][0]["fetch"]
    assert fetch["kind"] == "merged"
    # Up to date: nothing.
    up = {"current_version": v2, "base_sha256": base["sha256"]}
    assert (await client.get(LATEST, params=up)).json()["models"][0]["fetch"]["kind"] == "none"


def _row_files(registry: LocalRegistry, version: int) -> list[dict[str, Any]]:
    from storage.repo.versions import get_version

    with registry.database.transaction() as session:
        row = get_version(STUDENT, version, session=session)
        assert row is not None
        return list(row.files)


async def test_agents_adapters_listed_and_rolled_back_on_their_own(
    client: httpx.AsyncClient, registry: LocalRegistry, tmp_path: Path
) -> None:
    main = _publish(registry, _files(tmp_path / "main", "m", adapter_bytes=b"main" * 10))
    s1 = _publish(registry, _files(tmp_path / "s1", "s1", adapter_bytes=b"sup1" * 10), "support")
    c1 = _publish(registry, _files(tmp_path / "c1", "c1", adapter_bytes=b"code" * 10), "coder")
    s2 = _publish(registry, _files(tmp_path / "s2", "s2", adapter_bytes=b"sup2" * 10), "support")
    entry = (await client.get(LATEST)).json()["models"][0]
    assert entry["version"] == main  # agent releases do not move the student's own channel
    agents = {a["agent"]: a for a in entry["agents"]}
    assert sorted(agents) == ["coder", "support"]
    assert (agents["support"]["version"], agents["coder"]["version"]) == (s2, c1)
    assert all(a["same_base"] for a in agents.values())
    assert (await client.get(agents["support"]["adapter"]["url"])).content == b"sup2" * 10

    moved = registry.rollback(STUDENT, channel=agent_channel("stable", "support"), reason="bad")
    assert (moved.from_version, moved.to_version) == (s2, s1)
    entry = (await client.get(LATEST)).json()["models"][0]
    agents = {a["agent"]: a["version"] for a in entry["agents"]}
    assert agents == {"coder": c1, "support": s1} and entry["version"] == main


async def test_bad_base_sha256_is_422(client: httpx.AsyncClient) -> None:
    resp = await client.get(LATEST, params={"base_sha256": "not-a-digest"})
    assert resp.status_code == 422 and "base_sha256" in resp.json()["detail"]


async def test_uploads_carry_an_optional_agent(client: httpx.AsyncClient, db: Database) -> None:
    from sqlalchemy import select

    from storage.models import Interaction

    device, auth = await register(client)
    body = {
        "device_id": device,
        "timestamp": "2026-12-01T12:00:00Z",
        "interactions": [interaction(agent="support"), interaction()],
    }
    resp = await client.post("/api/training/feedback", json=body, headers=auth)
    assert resp.status_code == 200, resp.text
    with db.transaction() as session:
        assert sorted(session.scalars(select(Interaction.agent)), key=str) == [None, "support"]
    for bad in ("has space", "x" * 25, "", "-lead"):
        body["interactions"] = [interaction(agent=bad)]
        resp = await client.post("/api/training/feedback", json=body, headers=auth)
        assert resp.status_code == 422 and "agent" in resp.text, bad
