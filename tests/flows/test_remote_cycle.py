"""A whole perpetual cycle whose teacher answers come from a live loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from sqlalchemy import select

from flows.perpetual import perpetual_cycle
from storage.db import get_database
from storage.models import ModelVersion, TrainingRun
from tasks.cycle_summary import summary_of
from tasks.models.remote import REMOTE_FILE_ENV
from tests.flows.test_perpetual import seed_rows
from tests.remote_server import Loopback, llama_server, server_missing_reason
from tests.remote_server import write_remote_teachers as write_file
from tests.tasks.prepare.conftest import insert

# What this test checks is where the teacher's answers come from, not the gate (which
# tests/flows/test_perpetual.py exercises): a tiny student on a few records passes it.
GENEROUS_GATE = {
    "ppl_tolerance": 0.9,
    "first_version_fixed_tolerance": 0.9,
    "answer_tolerance": 0.99,
    "block_small_sets": False,
    "require_improvement": False,
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(server_missing_reason() is not None, reason=str(server_missing_reason())),
]


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    with llama_server() as server:
        yield server


def test_cycle_distills_from_a_remote_teacher_on_loopback(
    prefect_harness: None, loopback: Loopback, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    monkeypatch.setenv("LOOPBACK_KEY", loopback.api_key)
    preset = {
        "base_url": loopback.base_url,
        "model": loopback.model,
        "server": "llama_cpp",
        "api_key_env": "LOOPBACK_KEY",
    }
    monkeypatch.setenv(
        REMOTE_FILE_ENV, str(write_file(tmp_path / "remote.toml", **{"smollm2-remote": preset}))
    )
    from tasks.config import CycleConfig

    store = get_database()
    insert(store, seed_rows(0, 40))  # enough for a non-empty test split to gate on
    config: dict[str, Any] = {
        "teacher": "smollm2-remote",
        "students": ["tiny-llama-student"],
        "min_new_records": 10,
        "settle_seconds": 0,
        "distill": {
            "max_steps": 4,
            "learning_rate": 3e-3,
            "save_steps": 100,
            "gen_max_new_tokens": 24,  # short answers: the loopback server runs on one thread
        },
        "evaluate": {
            "scoring": {"limit": 4, "max_new_tokens": 8, "batch_size": 4},
            "gate": GENEROUS_GATE,
            "n_resamples": 50,
        },
        "export": {"quantizations": ["Q8_0"]},
    }
    state = perpetual_cycle(CycleConfig(**config), return_state=True)
    assert state.is_completed(), state.message
    summary = summary_of(state)
    assert summary is not None
    row = summary.students[0]
    assert row.status == "published", row
    assert row.teacher_cache is not None and row.teacher_cache["computed"] > 0
    with store.transaction() as session:
        version = session.scalar(select(ModelVersion))
        assert version is not None and version.teacher == "smollm2-remote"
        run = session.get(TrainingRun, version.training_run_id)
        assert run is not None and run.strategy == "sequence" and run.teacher == "smollm2-remote"
    # Every cached answer was written from the loopback server's reply.
    entries = list((tmp_path / "data" / "teacher_cache").rglob("*.safetensors"))
    assert len(entries) == row.teacher_cache["computed"]
    for path in entries:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        assert meta["source"] == f"remote:{loopback.base_url}" and meta["model"] == loopback.model
    store.dispose()
