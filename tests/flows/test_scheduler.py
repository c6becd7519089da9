"""Prefect's own scheduler fires our deployments, and Prefect's own CLI works against them.

A real `prefect server start` (scheduler and other services on), plain `prefect deploy --all`
from a copy of prefect.yaml whose weekly deployment is due every minute (tiny presets), a
process worker, and a run that the *scheduler* created completing.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.flows.prefect_server import PREFECT, prefect_cli, prefect_server

REPO = Path(__file__).resolve().parents[2]
POOL = "distillery-local"
NAMES = {
    "weekly-student-retraining",
    "biweekly-teacher-finetuning",
    "monthly-full-evaluation",
    "hourly-rollout-watch",
    "data-erasure",
    "daily-retention",
}


def _near_schedule_yaml(path: Path) -> Path:
    """prefect.yaml with the weekly deployment due every 60 s on tiny presets."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        if deployment["name"] == "weekly-student-retraining":
            deployment["schedules"] = [{"interval": 60, "timezone": "UTC"}]
            deployment["parameters"]["config"].update(
                teacher="tiny-llama-teacher", students=["tiny-llama-student"]
            )
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _post(api_url: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{api_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _scheduled_runs(api_url: str) -> dict[str, list[dict[str, Any]]]:
    """Deployment name -> its flow runs that the scheduler created."""
    deployments = {d["id"]: d["name"] for d in _post(api_url, "/deployments/filter", {})}
    runs = _post(api_url, "/flow_runs/filter", {"limit": 200})
    by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in deployments.values()}
    for run in runs:
        if run.get("auto_scheduled") and run.get("deployment_id") in deployments:
            by_name[deployments[run["deployment_id"]]].append(run)
    return by_name


def test_scheduler_creates_runs_and_a_worker_completes_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with prefect_server(tmp_path / "prefect-home") as (api_url, env):
        env = {**env, "DISTILLERY_DATA_DIR": str(data), "DISTILLERY_REGISTRY": "local"}
        prefect_cli(["work-pool", "create", POOL, "--type", "process"], env, REPO)
        prefect_file = _near_schedule_yaml(tmp_path / "prefect.yaml")
        prefect_cli(["deploy", "--all", "--prefect-file", str(prefect_file)], env, REPO)

        # Upcoming runs for all six deployments, created by the scheduler service.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            upcoming = _scheduled_runs(api_url)
            if set(upcoming) == NAMES and all(upcoming.values()):
                break
            time.sleep(2)
        assert set(upcoming) == NAMES, upcoming.keys()
        assert all(upcoming.values()), {n: len(r) for n, r in upcoming.items()}

        # Prefect's own CLI lists what we made (these answered 422 under fastapi 0.154).
        env["COLUMNS"] = "250"  # rich tables would cut the names to the default width
        listed = prefect_cli(["deployment", "ls"], env, REPO).stdout
        assert "weekly-student-retraining" in listed
        assert POOL in prefect_cli(["work-pool", "ls"], env, REPO).stdout
        assert "SCHEDULED" in prefect_cli(["flow-run", "ls"], env, REPO).stdout.upper()

        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", POOL, "--limit", "1"],
            env={**env, "PREFECT_WORKER_QUERY_SECONDS": "5"},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 420
            done: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not done:
                weekly = _scheduled_runs(api_url)["weekly-student-retraining"]
                done = [
                    r for r in weekly if r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED")
                ]
                time.sleep(3)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
        worker_log = (tmp_path / "worker.log").read_text()[-3000:]
        assert done, f"no scheduled run finished; worker log:\n{worker_log}"
        assert done[0]["state"]["type"] == "COMPLETED", (done[0]["state"], worker_log)
        assert done[0]["auto_scheduled"] is True
        assert (data / "distillery.db").is_file()  # it ran our flow against this store

        artifacts = prefect_cli(["artifact", "ls"], env, REPO).stdout
        assert "perpetual-cycle-summary" in artifacts
