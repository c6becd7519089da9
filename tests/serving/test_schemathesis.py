"""Schemathesis against a live uvicorn process: fuzz every operation from /openapi.json.

Checks: no server error, every status code documented, content types and response bodies
as documented. Uploads carry a real device's token, so bodies get past authentication.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from storage.db import Database
from tests.serving.conftest import free_port, start_uvicorn, wait_healthy

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    # Data the schema forbids (a string for an integer, an unknown enum, a value out of
    # range) must be refused: a coercing parser accepts it and fails this check.
    "negative_data_rejection",
]
EXAMPLES = os.environ.get("DISTILLERY_FUZZ_EXAMPLES", "60")
PHASES = "examples,coverage,fuzzing"


@pytest.fixture
def fuzzed_server(sqlite_db: Database, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A live service (SQLite; PostgreSQL in test_postgres_fuzz) and a device's auth header."""
    yield from _serve(sqlite_db, tmp_path)


def _serve(db: Database, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        "DISTILLERY_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_REGISTRATION_RATE_LIMIT": "100000/minute",
        "DISTILLERY_UPLOAD_RATE_LIMIT": "100000/minute",
        "DISTILLERY_CHAT_RATE_LIMIT": "100000/minute",
    }
    proc = start_uvicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        reg = httpx.post(f"{base}/api/devices", json={"platform": "fuzz", "app_version": "1"})
        yield base, {"Authorization": f"Bearer {reg.json()['token']}"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_api_conforms_to_its_document(
    fuzzed_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """`schemathesis run` (its CLI: the pytest plugin does not load under pytest 9)."""
    base, auth = fuzzed_server
    report = tmp_path / "schemathesis.json"
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json"]
    cmd += ["--checks", ",".join(CHECKS), "--max-examples", EXAMPLES, "--seed", "12"]
    cmd += ["--header", f"Authorization:{auth['Authorization']}", "--phases", PHASES]
    cmd += ["--report", "junit", "--report-junit-path", str(report.with_suffix(".xml"))]
    cmd += ["--generation-allow-x00", "true", "--no-color"]
    # cwd: schemathesis keeps a cache directory where it runs; not in the repository.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    junit = report.with_suffix(".xml").read_text()
    assert 'failures="0"' in junit and 'errors="0"' in junit
    assert "/api/training/feedback" in junit and "/api/models/mobile/latest" in junit


def test_postgres_text_fuzz_is_never_5xx(postgres_db: Database, tmp_path: Path) -> None:
    """The NUL / date / strict-type classes that broke PostgreSQL, against a live process."""
    for base, auth in _serve(postgres_db, tmp_path):
        device = httpx.post(f"{base}/api/devices", json={"platform": "p", "app_version": "1"})
        token = {"Authorization": f"Bearer {device.json()['token']}"}
        device_id = device.json()["device_id"]
        bad_values = ["\x00", "a\x00b", "\ud7ff\x00", "0001-01-01T00:00:00+05:00"]
        codes = set()
        for value in bad_values:
            for field in ("prompt", "response", "correction", "category", "model_name"):
                item = {
                    "id": "7b0c3a56-4f7e-4d8a-9b43-0f4fd7e0a001",
                    "model_name": "m",
                    "model_version": "1",
                    "prompt": "p",
                    "response": "r",
                    "created_at": "2026-01-01T00:00:00+00:00",
                    field: value,
                }
                body = {"device_id": device_id, "interactions": [item], "timestamp": value}
                resp = httpx.post(f"{base}/api/training/feedback", json=body, headers=token)
                codes.add(resp.status_code)
            if "\x00" in value:
                reg = {"platform": value, "app_version": "1"}
                codes.add(httpx.post(f"{base}/api/devices", json=reg).status_code)
                path = f"{base}/api/models/{quote(value, safe='')}/versions"
                codes.add(httpx.get(path).status_code)
        assert codes == {422}, codes
        assert auth  # the fixture's own device is unused here
