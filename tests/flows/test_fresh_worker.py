"""A worker on a fresh host: a venv with only Prefect, and the pull steps docs/operations.md
gives. The flow run clones the project, installs it as pyproject.toml declares, and runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from storage.db import Database
from tests.flows.prefect_server import prefect_server
from tests.flows.test_perpetual import seed_rows
from tests.tasks.prepare.conftest import insert

REPO = Path(__file__).resolve().parents[2]
POOL = "fresh-host"

pytestmark = pytest.mark.slow  # a fresh venv installs torch and the rest: minutes


def documented_pull_steps() -> list[dict[str, Any]]:
    """The `pull:` block the operations guide tells users to put in prefect.yaml."""
    text = (REPO / "docs" / "operations.md").read_text()
    block = re.search(r"```yaml\n(pull:\n.*?)```", text, re.S)
    assert block, "docs/operations.md lost its pull steps"
    return list(yaml.safe_load(block.group(1))["pull"])


def _api(api_url: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{api_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_the_documented_pull_steps_install_and_run_a_flow_on_a_fresh_venv(
    tmp_path: Path,
) -> None:
    steps = documented_pull_steps()
    clone = steps[0]["prefect.deployments.steps.git_clone"]
    branch = subprocess.run(
        ["git", "branch", "--show-current"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if not branch or not (REPO / ".git").exists():
        pytest.skip("the checkout is not a git repository: nothing to clone")
    clone.update(repository=str(REPO), branch=branch)  # this checkout stands in for GitHub

    venv = tmp_path / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    prefect_pin = f"prefect=={__import__('prefect').__version__}"
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", prefect_pin], check=True)

    data = tmp_path / "data"
    db = Database(f"sqlite:///{data / 'distillery.db'}")
    db.upgrade()
    insert(db, seed_rows(0, 20))
    db.dispose()
    with prefect_server(tmp_path / "prefect-home") as (api_url, env):
        _api(api_url, "/work_pools/", {"name": POOL, "type": "process"})
        flow_id = _api(api_url, "/flows/", {"name": "prepare"})["id"]
        deployment = _api(
            api_url,
            "/deployments/",
            {
                "name": "fresh",
                "flow_id": flow_id,
                "work_pool_name": POOL,
                "entrypoint": "flows/prepare.py:prepare_flow",
                "pull_steps": steps,
                "enforce_parameter_schema": False,
            },
        )
        run = _api(api_url, f"/deployments/{deployment['id']}/create_flow_run", {})
        worker_env = {
            **env,
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "DISTILLERY_DATA_DIR": str(data),
        }
        done = subprocess.run(
            [venv / "bin/prefect", "worker", "start", "--pool", POOL, "--run-once"],
            env=worker_env, cwd=tmp_path, capture_output=True, text=True, timeout=2400,
        )  # fmt: skip
        state = httpx.get(f"{api_url}/flow_runs/{run['id']}", timeout=30).json()["state"]
        assert state["type"] == "COMPLETED", (state, done.stdout[-4000:], done.stderr[-4000:])
    # The project is installed in the fresh venv, and the flow wrote its snapshot.
    shown = subprocess.run(
        [venv / "bin/python", "-m", "pip", "show", "distillery"], capture_output=True, text=True
    )
    assert "Name: distillery" in shown.stdout
    assert any((data / "artifacts" / "datasets").glob("*/dataset_dict.json"))
