"""Revocation across worker processes: two uvicorn workers, fresh connections to each."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.db import Database
from storage.repo.devices import delete_device, set_status
from storage.repo.feedback import interaction_ids
from tests.serving.conftest import REPO_ROOT, free_port, interaction, upload, wait_healthy

ROUNDS = 24  # fresh connections, so the kernel spreads them over both workers


@pytest.fixture
def two_workers(db: Database, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
    }
    cmd = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def post(base: str, device_id: str, token: str) -> tuple[int, str]:
    item = interaction()
    resp = httpx.post(
        f"{base}/api/training/feedback",
        json=upload(device_id, [item]),
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
    )
    return resp.status_code, item["id"]


def test_revoked_and_deleted_devices_are_401_in_every_worker(
    two_workers: str, db: Database
) -> None:
    creds = []
    for _ in range(2):
        reg = httpx.post(f"{two_workers}/api/devices", json={"platform": "a", "app_version": "1"})
        creds.append((reg.json()["device_id"], reg.json()["token"]))
    (revoked, revoked_token), (deleted, deleted_token) = creds
    # Every worker verifies and caches both tokens.
    assert {post(two_workers, revoked, revoked_token)[0] for _ in range(ROUNDS)} == {200}
    warm = httpx.post(
        f"{two_workers}/api/training/feedback",
        json=upload(deleted, []),
        headers={"Authorization": f"Bearer {deleted_token}"},
    )
    assert warm.status_code == 422  # verified (and cached) before the body was refused
    with db.transaction(write=True) as session:
        set_status(session=session, device_ids=[revoked], status="revoked")
        assert delete_device(session=session, device_id=deleted)

    late = [post(two_workers, revoked, revoked_token) for _ in range(ROUNDS)]
    gone = [post(two_workers, deleted, deleted_token) for _ in range(ROUNDS)]
    assert {code for code, _ in late + gone} == {401}
    with db.transaction() as session:
        kept = interaction_ids(session=session)
    assert len(kept) == ROUNDS and not kept & {uuid.UUID(i) for _, i in late + gone}
