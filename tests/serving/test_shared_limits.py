"""Rate limits shared by service workers through Redis (`DISTILLERY_RATE_LIMIT_STORAGE`).

With `memory://` each worker counts alone, so two workers let twice the budget through;
with Redis they share one. Skipped where no Redis server answers (REDIS_URL, default
redis://127.0.0.1:6379/9).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.db import Database
from tests.serving.conftest import free_port, start_uvicorn, wait_healthy

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
BUDGET = 5


def _redis_missing() -> str | None:
    try:
        import redis
    except ImportError:
        return "the redis client is not installed (pip install -e '.[redis]')"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"no Redis server at {REDIS_URL}: {exc}"
    return None


pytestmark = pytest.mark.skipif(_redis_missing() is not None, reason=str(_redis_missing()))


@pytest.fixture
def two_workers_on_redis(sqlite_db: Database, tmp_path: Path) -> Iterator[str]:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # a database of its own: no earlier counts
    port = free_port()
    env = {
        "DISTILLERY_DATABASE_URL": sqlite_db.url.render_as_string(hide_password=False),
        "DISTILLERY_DATA_DIR": str(tmp_path / "data"),
        "DISTILLERY_RATE_LIMIT_STORAGE": REDIS_URL,
        "DISTILLERY_REGISTRATION_RATE_LIMIT": f"{BUDGET}/minute",
    }
    proc = start_uvicorn(env, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_workers_share_one_registration_budget(two_workers_on_redis: str) -> None:
    codes = []
    for _ in range(4 * BUDGET):  # fresh connections: the kernel spreads them over both workers
        resp = httpx.post(
            f"{two_workers_on_redis}/api/devices",
            json={"platform": "android", "app_version": "1"},
            headers={"Connection": "close"},
        )
        codes.append(resp.status_code)
    assert codes.count(201) == BUDGET, codes
    assert set(codes) == {201, 429}
