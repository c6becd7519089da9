"""Service fixtures: an app on each test database, an ASGI client, a live uvicorn process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from serving.app import create_app
from serving.settings import ServiceSettings
from storage.db import Database

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the event loop uvicorn uses)."""
    return "asyncio"


@pytest.fixture
def artifact_root(tmp_path: Path) -> Path:
    """The test's artifact root (the registry's files), empty."""
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def settings() -> ServiceSettings:
    """Service settings isolated from the environment, checking the catalog on every request."""
    return ServiceSettings(
        _env_file=None,
        manifest_cache_seconds=0,
        allowed_hosts=["testserver"],  # httpx's ASGI client sends Host: testserver
    )


@pytest.fixture
def app(db: Database, settings: ServiceSettings, artifact_root: Path) -> FastAPI:
    """The service on the parametrized test database."""
    return create_app(settings=settings, database=db, artifact_root=artifact_root)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def register(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """Register a device; returns its id and the Authorization header."""
    resp = await client.post("/api/devices", json={"platform": "android", "app_version": "1.2"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return body["device_id"], {"Authorization": f"Bearer {body['token']}"}


def interaction(**overrides: Any) -> dict[str, Any]:
    """One valid interaction as a phone sends it."""
    item: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "model_name": "smollm2-student",
        "model_version": "3",
        "prompt": "What is the capital of France?",
        "response": "Paris.",
        "correction": None,
        "rating": 5,
        "latency_ms": 120,
        "category": "qa",
        "created_at": datetime.now(UTC).isoformat(),
    }
    item.update(overrides)
    return item


def upload(device_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """An upload body."""
    return {
        "device_id": device_id,
        "interactions": items,
        "timestamp": datetime.now(UTC).isoformat(),
    }


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_uvicorn(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """`uvicorn serving.app:create_app --factory` in a subprocess (loopback only)."""
    cmd = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    cmd += ["--workers", str(workers)]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **env})


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll /api/health until it answers 200 (fails if the process dies or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} did not become healthy in {timeout}s")


@contextmanager
def serving_live(env: dict[str, str], stop_timeout: float = 20) -> Iterator[str]:
    """A live uvicorn process with `env` on a free port; yields its base URL, stops it after."""
    port = free_port()
    proc = start_uvicorn(env, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, proc)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def live_server(db: Database, tmp_path: Path) -> Iterator[str]:
    """A live uvicorn process on the test database; yields its base URL and stops it after."""
    env = {
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_MANIFEST_CACHE_SECONDS": "0",
    }
    with serving_live(env) as base_url:
        yield base_url


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def tuned(
    request: pytest.FixtureRequest, db: Database, settings: ServiceSettings, artifact_root: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose settings are updated with the test's `overrides` mark."""
    marker = request.node.get_closest_marker("overrides")
    overrides: dict[str, Any] = marker.kwargs if marker else {}
    tuned_settings = ServiceSettings(_env_file=None, **{**settings.model_dump(), **overrides})
    app = create_app(settings=tuned_settings, database=db, artifact_root=artifact_root)
    async for c in client_for(app):
        yield c
