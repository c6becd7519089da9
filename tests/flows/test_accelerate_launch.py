"""The multi-GPU training path on one CPU process: `accelerate launch -m ...train_entry`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.tasks.distill.conftest import save_snapshot, seed_records

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def test_accelerate_launch_trains_and_writes_the_adapter(tmp_path: Path) -> None:
    snapshot = save_snapshot(tmp_path / "snapshot", seed_records(12), seed_records(4, offset=150))
    out = tmp_path / "run"
    job = {
        "snapshot_path": str(snapshot),
        "teacher": "tiny-llama-teacher",
        "student": "tiny-llama-student",
        "output_dir": str(out),
        "config": {"max_steps": 2, "save_steps": 100, "logging_steps": 1},
    }
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "DISTILLERY_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    command = [ACCELERATE, "launch", "--num_processes", "1", "--num_machines", "1", "--cpu"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["-m", "tasks.distill.train_entry", "--config", str(job_file)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    result = json.loads(done.stdout.strip().splitlines()[-1])
    adapter = Path(result["adapter_dir"])
    assert adapter == out / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert result["metrics"]["global_step"] == 2 or result["metrics"].get("steps") == 2, result
