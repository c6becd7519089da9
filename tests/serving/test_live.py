"""Against a live uvicorn process: a real upload, and 16 clients racing overlapping batches."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from storage.db import Database
from storage.repo.feedback import interaction_ids
from tests.serving.conftest import REPO_ROOT, free_port, interaction, upload, wait_healthy


def register_sync(base_url: str) -> tuple[str, dict[str, str]]:
    resp = httpx.post(f"{base_url}/api/devices", json={"platform": "ios", "app_version": "2.0"})
    assert resp.status_code == 201, resp.text
    return resp.json()["device_id"], {"Authorization": f"Bearer {resp.json()['token']}"}


def test_live_upload_and_limits(live_server: str, db: Database) -> None:
    device_id, auth = register_sync(live_server)
    items = [interaction() for _ in range(10)]
    with httpx.Client(base_url=live_server, headers=auth) as client:
        first = client.post("/api/training/feedback", json=upload(device_id, items))
        assert first.status_code == 200 and first.json()["accepted"] == 10
        retry = client.post("/api/training/feedback", json=upload(device_id, items))
        assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 10)

        def chunked() -> Iterator[bytes]:
            yield b'{"device_id": "' + device_id.encode() + b'", "interactions": ['
            for _ in range(300):  # 300 x 8 KiB: over the 2 MiB default, streamed chunked
                yield b'"' + b"a" * 8192 + b'",'
            yield b"]}"

        try:
            too_big = client.post(
                "/api/training/feedback",
                content=chunked(),
                headers={"Content-Type": "application/json"},
            )
            assert too_big.status_code == 413
        except httpx.RemoteProtocolError:
            pass  # the server may answer 413 and close before the client finished sending
        metrics = client.get("/metrics").text
    assert "distillery_feedback_interactions_accepted_total 10.0" in metrics
    with db.transaction() as session:
        assert interaction_ids(session=session) == {uuid.UUID(i["id"]) for i in items}


def post_with_retries(
    client: httpx.Client, body: dict[str, Any], failures: list[int]
) -> dict[str, Any]:
    """POST until an answer arrives (a phone on a flaky network does the same)."""
    for attempt in range(8):
        try:
            resp = client.post("/api/training/feedback", json=body)
            if resp.status_code == 200:
                return resp.json()
            assert resp.status_code >= 500, resp.text
            failures.append(resp.status_code)
        except httpx.TransportError:
            pass
        time.sleep(0.05 * (attempt + 1))
    raise AssertionError("upload never succeeded")


def test_sixteen_clients_upload_overlapping_batches(live_server: str, db: Database) -> None:
    devices = [register_sync(live_server) for _ in range(4)]
    pool = [interaction(prompt=f"prompt {n}") for n in range(300)]
    answers: list[dict[str, Any]] = []
    sent: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    failures: list[int] = []  # 5xx answers, e.g. a deadlock between overlapping batches

    def worker(index: int) -> None:
        rng = random.Random(index)
        device_id, auth = devices[index % len(devices)]
        try:
            with httpx.Client(base_url=live_server, headers=auth, timeout=60) as client:
                for _ in range(4):
                    batch = rng.sample(pool, 25)
                    body = upload(device_id, batch)
                    # Every batch is sent twice: the retry after a lost answer.
                    for _ in range(2):
                        answer = post_with_retries(client, body, failures)
                        with lock:
                            answers.append(answer)
                            sent.extend(item["id"] for item in batch)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert failures == []

    unique = {uuid.UUID(i) for i in sent}
    with db.transaction() as session:
        assert interaction_ids(session=session) == unique
    assert sum(a["accepted"] for a in answers) == len(unique)
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == len(sent) == 16 * 4 * 2 * 25
    assert len({a["batch_id"] for a in answers}) == len(answers)


def test_distillery_serve_command(tmp_path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
    env = {**os.environ, "DISTILLERY_DATA_DIR": str(tmp_path), "DISTILLERY_DATABASE_URL": ""}
    proc = subprocess.Popen(cmd + ["--log-level", "warning"], cwd=REPO_ROOT, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        latest = httpx.get(f"http://127.0.0.1:{port}/api/models/mobile/latest")
        assert latest.json() == {"channel": "stable", "models": []}
        assert (tmp_path / "distillery.db").exists()  # the embedded default, migrated
    finally:
        proc.terminate()
        proc.wait(timeout=10)
