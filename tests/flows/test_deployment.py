"""The deployment path a user follows: server, `prefect deploy --all`, worker, triggered run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.flows.prefect_server import PREFECT, prefect_cli, prefect_server

REPO = Path(__file__).resolve().parents[2]
POOL = "distillery-local"
WEEKLY = "perpetual-cycle/weekly-student-retraining"


def _api(api_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.post(f"{api_url}{path}", json=body or {}, timeout=30)
    response.raise_for_status()
    return response.json()


def _run_deployment(env: dict[str, str], params: dict[str, Any]) -> str:
    """`prefect deployment run` with parameters; returns the flow run id."""
    done = prefect_cli(
        ["deployment", "run", WEEKLY, "--params", json.dumps(params)], env, REPO, timeout=120
    )
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
    assert match, done.stdout
    return match.group(1)


def _worker_once(env: dict[str, str], timeout: float) -> str:
    """A process worker that polls once and waits for the runs it picked up."""
    done = subprocess.run(
        [PREFECT, "worker", "start", "--pool", POOL, "--run-once", "--limit", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout + done.stderr


def test_prefect_yaml_declares_the_seed_cadence() -> None:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in config["deployments"]}
    assert set(by_name) == {
        "weekly-student-retraining",
        "biweekly-teacher-finetuning",
        "monthly-full-evaluation",
        "hourly-rollout-watch",
        "data-erasure",
        "daily-retention",
    }
    assert by_name["weekly-student-retraining"]["schedules"][0]["cron"] == "0 2 * * 1"
    assert by_name["hourly-rollout-watch"]["schedules"][0]["cron"] == "5 * * * *"
    assert by_name["daily-retention"]["schedules"][0]["cron"] == "30 3 * * *"
    assert by_name["data-erasure"]["schedules"][0]["cron"] == "*/15 * * * *"
    assert by_name["biweekly-teacher-finetuning"]["schedules"][0]["interval"] == 14 * 24 * 3600
    assert by_name["monthly-full-evaluation"]["schedules"][0]["cron"].endswith("1 * *")
    for deployment in by_name.values():
        assert deployment["concurrency_limit"]["limit"] == 1
        assert deployment["work_pool"]["name"] == POOL


def test_deploy_all_then_a_worker_runs_the_weekly_cycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with prefect_server(tmp_path / "prefect-home") as (api_url, env):
        env = {**env, "DISTILLERY_DATA_DIR": str(data), "DISTILLERY_REGISTRY": "local"}
        prefect_cli(["work-pool", "create", POOL, "--type", "process"], env, REPO)
        prefect_cli(["deploy", "--all"], env, REPO)

        deployments = {d["name"]: d for d in _api(api_url, "/deployments/filter")}
        assert set(deployments) == {
            "weekly-student-retraining",
            "biweekly-teacher-finetuning",
            "monthly-full-evaluation",
            "hourly-rollout-watch",
            "data-erasure",
            "daily-retention",
        }
        weekly = deployments["weekly-student-retraining"]
        assert weekly["concurrency_limit"] == 1 or weekly["global_concurrency_limit"]["limit"] == 1
        assert weekly["schedules"] and weekly["schedules"][0]["active"]
        assert weekly["pull_steps"][0]["prefect.deployments.steps.set_working_directory"] == {
            "directory": str(REPO)
        }
        # The typed parameter shows up as a schema the UI renders as a form.
        assert "config" in weekly["parameter_openapi_schema"]["properties"]

        # A custom run with the tiny presets, as from the UI's "Custom run" form. The store is
        # empty, so the cycle prepares nothing and completes: the path, not the training.
        tiny = {"teacher": "tiny-llama-teacher", "students": ["tiny-llama-student"]}
        run_id = _run_deployment(env, {"config": tiny})
        output = _worker_once(env, timeout=300)

        run = httpx.get(f"{api_url}/flow_runs/{run_id}", timeout=30).json()
        assert run["state"]["type"] == "COMPLETED", (run["state"], output)
        assert run["parameters"]["config"]["students"] == ["tiny-llama-student"]
        # It ran from the repository (pull step) with this store: the database was created.
        assert (data / "distillery.db").is_file()
        artifacts = _api(
            api_url,
            "/artifacts/filter",
            {"artifacts": {"key": {"any_": ["perpetual-cycle-summary"]}}},
        )
        assert any("tiny-llama-student" in a["data"] for a in artifacts)


@pytest.mark.slow
def test_a_deployed_cycle_trains_and_publishes_through_the_worker(tmp_path: Path) -> None:
    """The weekly deployment on tiny presets with data: a version is published via the worker."""
    from storage.db import Database
    from tests.flows.test_perpetual import seed_rows
    from tests.flows.test_remote_cycle import GENEROUS_GATE
    from tests.tasks.prepare.conftest import insert

    data = tmp_path / "data"
    db = Database(f"sqlite:///{data / 'distillery.db'}")
    db.upgrade()
    insert(db, seed_rows(0, 40))
    db.dispose()
    with prefect_server(tmp_path / "prefect-home") as (api_url, env):
        env = {**env, "DISTILLERY_DATA_DIR": str(data), "DISTILLERY_REGISTRY": "local"}
        prefect_cli(["work-pool", "create", POOL, "--type", "process"], env, REPO)
        prefect_cli(["deploy", "--name", "weekly-student-retraining"], env, REPO)
        config = {
            "teacher": "tiny-llama-teacher",
            "students": ["tiny-llama-student"],
            "min_new_records": 1,
            "settle_seconds": 0,
            "distill": {"max_steps": 3, "learning_rate": 3e-3},
            "evaluate": {
                "scoring": {"limit": 4, "max_new_tokens": 8},
                "gate": GENEROUS_GATE,
                "n_resamples": 50,
            },
        }
        run_id = _run_deployment(env, {"config": config})
        output = _worker_once(env, timeout=1200)
        run = httpx.get(f"{api_url}/flow_runs/{run_id}", timeout=30).json()
        assert run["state"]["type"] == "COMPLETED", (run["state"], output[-4000:])
    db = Database(f"sqlite:///{data / 'distillery.db'}")
    with db.transaction() as session:
        from sqlalchemy import select

        from storage.models import ModelVersion

        version = session.scalar(select(ModelVersion))
        assert version is not None and version.status == "published"
    db.dispose()


@pytest.fixture(autouse=True)
def _clean_prefect_storage(tmp_path: Path) -> Any:
    yield
    shutil.rmtree(tmp_path / "prefect-home", ignore_errors=True)
