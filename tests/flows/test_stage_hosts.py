"""Stages on different hosts: a cycle's worker on host A prepares, evaluates and publishes;
the distill stage runs on host B's worker, another pool with its own data dir.

A real Prefect server, two process workers in different working dirs, one shared database
and one S3 endpoint (moto's server) on loopback: the hosts share nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import ModelVersion, TrainingRun
from tests.flows.prefect_server import PREFECT, prefect_cli, prefect_server
from tests.flows.test_perpetual import seed_rows, tiny_config
from tests.tasks.prepare.conftest import insert

REPO = Path(__file__).resolve().parents[2]
STUDENT = "tiny-llama-student"
RUN_KEY = f"runs/students/{STUDENT}/snapshot-1"

DEPLOY = """
from flows.distill_stage import distill_stage
from flows.perpetual import perpetual_cycle
for flow, entry, pool in (
    (perpetual_cycle, "flows/perpetual.py:perpetual_cycle", "host-a"),
    (distill_stage, "flows/distill_stage.py:distill_stage", "host-b"),
):
    flow.from_source(source=REPO, entrypoint=entry).deploy(name=pool, work_pool_name=pool)
"""


@pytest.fixture
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The one database both hosts name: PostgreSQL when a server answers, else a file."""
    try:
        yield request.getfixturevalue("postgres_db")
    except pytest.skip.Exception:
        db = Database(f"sqlite:///{tmp_path / 'shared.db'}")
        db.upgrade()
        yield db
        db.dispose()


def _host_env(env: dict[str, str], tmp_path: Path, name: str, url: str) -> dict[str, str]:
    """A host's environment: its own data dir; the server, database and store shared."""
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return {
        **env,
        **aws,  # the S3 endpoint and credentials, as any host would set them
        "DISTILLERY_DATA_DIR": str(tmp_path / name / "data"),
        "DISTILLERY_DATABASE_URL": url,
        "DISTILLERY_ARTIFACT_STORE": os.environ["DISTILLERY_ARTIFACT_STORE"],
        "DISTILLERY_REGISTRY": "local",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }


def _flow_runs(api_url: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{api_url}/flow_runs/filter", json={"limit": 50}, timeout=30)
    response.raise_for_status()
    return list(response.json())


def _cycle(api_url: str, env_a: dict[str, str], tmp_path: Path, config: dict[str, Any]) -> None:
    """Start the cycle deployment and let host A's worker run it to the end."""
    started = prefect_cli(
        ["deployment", "run", "perpetual-cycle/host-a", "--params", json.dumps({"config": config})],
        env_a, REPO, timeout=120,
    )  # fmt: skip
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", started.stdout)
    assert match, started.stdout
    done = subprocess.run(
        [PREFECT, "worker", "start", "--pool", "host-a", "--run-once", "--limit", "1"],
        env=env_a, cwd=tmp_path / "host-a", capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    cycle = httpx.get(f"{api_url}/flow_runs/{match.group(1)}", timeout=30).json()
    b_output = (tmp_path / "worker-b.log").read_text()
    assert cycle["state"]["type"] == "COMPLETED", (
        cycle["state"], done.stdout[-3000:], done.stderr[-3000:], b_output[-3000:]
    )  # fmt: skip


def _version(db: Database, number: int) -> tuple[ModelVersion, TrainingRun]:
    with db.transaction() as session:
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.student == STUDENT, ModelVersion.version == number
            )
        )
        assert version is not None and version.status == "published", version
        run = session.get(TrainingRun, version.training_run_id)
        assert run is not None
        return version, run


def test_distill_runs_on_another_pools_worker_and_the_cycle_publishes_its_adapter(
    s3_store: str, shared_db: Database, tmp_path: Path
) -> None:
    insert(shared_db, seed_rows(0, 40))
    url = shared_db.url.render_as_string(hide_password=False)
    a_root, b_root = (tmp_path / n / "data" / "artifacts" for n in ("host-a", "host-b"))
    config = tiny_config(students=[STUDENT], distill_deployment="distill-stage/host-b")
    with prefect_server(tmp_path / "prefect-home") as (api_url, env):
        env_a = _host_env(env, tmp_path, "host-a", url)
        env_b = _host_env(env, tmp_path, "host-b", url)
        for pool in ("host-a", "host-b"):
            prefect_cli(["work-pool", "create", pool, "--type", "process"], env, REPO)
            (tmp_path / pool).mkdir()
        deploy = subprocess.run(
            [sys.executable, "-c", f"REPO = {str(REPO)!r}\n{DEPLOY}"],
            env=env_a, cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert deploy.returncode == 0, deploy.stderr[-3000:]
        b_log = (tmp_path / "worker-b.log").open("w")
        worker_b = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "host-b"],
            env=env_b, cwd=tmp_path / "host-b", stdout=b_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _cycle(api_url, env_a, tmp_path, config.model_dump(mode="json"))
            stages = [r for r in _flow_runs(api_url) if r.get("work_pool_name") == "host-b"]
            assert [r["state"]["type"] for r in stages] == ["COMPLETED"]  # distilled on B
            _version(shared_db, 1)  # published
            # B trained: its run folder holds the tokenized training data; A fetched only the
            # adapter it judged (and wrote its export beside it).
            assert (b_root / RUN_KEY / "prepared").is_dir(), sorted((b_root / RUN_KEY).iterdir())
            assert not (a_root / RUN_KEY / "prepared").exists()
            assert (a_root / RUN_KEY / "adapter" / "adapter_config.json").is_file()
            # A evaluated and published: the registry's files are on A (and in the store).
            assert (a_root / "models" / STUDENT / "1").is_dir()
            assert not (b_root / "models").exists()

            # The next cycle: B warm-starts v2 from v1's adapter, A gates it against v1.
            insert(shared_db, seed_rows(40, 30), device="phone-2")
            _cycle(api_url, env_a, tmp_path, config.model_dump(mode="json"))
        finally:
            worker_b.terminate()
            worker_b.wait(timeout=60)
            b_log.close()
    v2, v2_run = _version(shared_db, 2)
    assert v2_run.config["warm_start_adapter"] == f"{RUN_KEY}/adapter"  # a key, not B's path
    assert v2.gate["rule"] == "stable" and v2.gate["promote"], v2.gate
    assert (b_root / f"runs/students/{STUDENT}/snapshot-2/prepared").is_dir()
