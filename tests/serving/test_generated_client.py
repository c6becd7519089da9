"""A client generated from our OpenAPI document (openapi-python-client) drives a live service."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.db import Database
from tests.serving.catalog_rows import add_version, write_artifact
from tests.serving.conftest import free_port, start_uvicorn, wait_healthy

PACKAGE = "distillery_generated_client"
DATA = bytes(range(256)) * 8


@pytest.fixture
def served(sqlite_db: Database, tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "artifacts"
    rel = "models/s/v1/model.Q4_K_M.gguf"
    add_version(sqlite_db, "s", 1, [write_artifact(root, rel, DATA)])
    port = free_port()
    env = {
        "DISTILLERY_DATABASE_URL": sqlite_db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_ARTIFACT_ROOT": str(root),
        "DISTILLERY_MANIFEST_CACHE_SECONDS": "0",
    }
    proc = start_uvicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def generate(base: str, out: Path) -> Any:
    """Generate the client package from the live document and import it."""
    spec = out / "openapi.json"
    spec.write_bytes(httpx.get(f"{base}/openapi.json").content)
    tool = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(tool), "generate", "--path", str(spec), "--output-path", str(out / PACKAGE)]
    done = subprocess.run(
        [*cmd, "--meta", "none"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))


def test_generated_client_registers_uploads_reads_manifest_and_resumes_download(
    served: str, tmp_path: Path
) -> None:
    client_pkg = generate(served, tmp_path)
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    register = importlib.import_module(f"{api.__name__}.devices.register_device")
    upload = importlib.import_module(f"{api.__name__}.feedback.upload_feedback")
    latest = importlib.import_module(f"{api.__name__}.models.latest_manifest")
    download = importlib.import_module(f"{api.__name__}.artifacts.download_artifact")

    anonymous = client_pkg.Client(base_url=served)
    creds = register.sync(
        client=anonymous, body=models.DeviceRegistration(platform="android", app_version="2.1")
    )
    assert isinstance(creds, models.DeviceCredentials) and creds.status.value == "active"

    authed = client_pkg.AuthenticatedClient(base_url=served, token=creds.token)
    now = datetime.now(UTC)
    item = models.InteractionIn(
        id=uuid.uuid4(),
        model_name="s",
        model_version="1",
        prompt="What is 2 + 2?",
        response="4",
        rating=5,
        created_at=now,
    )
    body = models.FeedbackUpload(device_id=creds.device_id, interactions=[item], timestamp=now)
    result = upload.sync(client=authed, body=body)
    assert isinstance(result, models.FeedbackResult)
    assert (result.accepted, result.updated, result.duplicates) == (1, 0, 0)
    # Consent is part of the typed contract: a user who allows evaluation only, or nothing.
    evaluate_only = models.InteractionIn(
        id=uuid.uuid4(), model_name="s", model_version="1", prompt="2 + 3?", response="5",
        created_at=now, consent=models.InteractionInConsentType0("evaluate"),
    )  # fmt: skip
    nothing = models.InteractionIn(
        id=uuid.uuid4(), model_name="s", model_version="1", prompt="My PIN?", response="…",
        created_at=now, consent=models.InteractionInConsentType0("none"),
    )  # fmt: skip
    body = models.FeedbackUpload(
        device_id=creds.device_id, interactions=[evaluate_only, nothing], timestamp=now
    )
    result = upload.sync(client=authed, body=body)
    assert isinstance(result, models.FeedbackResult)
    assert (result.accepted, result.not_stored) == (1, 1)

    # The device erases its data and follows the erasure.
    erase = importlib.import_module(f"{api.__name__}.privacy.erase_my_data")
    status = importlib.import_module(f"{api.__name__}.privacy.erasure_status")
    erasure = erase.sync(client=authed)
    assert isinstance(erasure, models.ErasureOut) and erasure.interactions == 2
    again = status.sync(erasure.erasure_id, client=authed)
    assert isinstance(again, models.ErasureOut) and again.status.value == "pending"

    wrong = models.FeedbackUpload(device_id="someone-else", interactions=[item], timestamp=now)
    refused = upload.sync_detailed(client=authed, body=wrong)
    assert refused.status_code == 403 and isinstance(refused.parsed, models.ErrorBody)

    manifest = latest.sync(client=anonymous, current_version=0)
    assert isinstance(manifest, models.Manifest) and manifest.update_available is True
    entry = manifest.models[0]
    assert (entry.student, entry.version, entry.size) == ("s", 1, len(DATA))
    path = entry.download_url.split("/api/artifacts/", 1)[1]

    # Resume from byte 1000, as a phone whose download broke off would.
    ranged = client_pkg.Client(base_url=served, headers={"Range": "bytes=1000-"})
    part = download.sync_detailed(path, client=ranged)
    assert part.status_code == 206 and part.content == DATA[1000:]
    whole = download.sync_detailed(path, client=anonymous)
    assert whole.status_code == 200 and whole.content == DATA
