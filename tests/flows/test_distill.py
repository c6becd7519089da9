"""The distill flow and CLI on tiny models: a real Prefect flow run and a TrainingRun row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from flows.distill import distill_flow
from storage.db import Database
from storage.repo.runs import list_runs
from tasks.distill.preflight import StrategyError
from tests.tasks.distill.snapshots import save_snapshot, seed_records

FAST = {
    "max_steps": 2,
    "save_steps": 100,
    "per_device_batch_size": 2,
    "top_k": 4,
    "max_length": 96,
    "gen_max_new_tokens": 8,
}


@pytest.fixture
def snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    return save_snapshot(tmp_path / "snap", seed_records(6), seed_records(2, offset=150))


def test_flow_runs_preflight_signals_and_training(
    prefect_harness, snapshot, sqlite_db: Database, tmp_path: Path
) -> None:
    out = distill_flow(
        str(snapshot),
        "tiny-llama-teacher",
        "tiny-llama-student-b",
        config=FAST,
        output_dir=str(tmp_path / "out"),
        database_url=str(sqlite_db.url),
    )
    assert out.strategy == "xtok"  # different vocabularies: cross-tokenizer logit KD
    assert (out.adapter_dir / "adapter_model.safetensors").is_file()
    assert out.metrics["global_step"] == 2
    with sqlite_db.transaction() as session:
        (row,) = list_runs(session=session)
    assert (row.id, row.status, row.strategy) == (out.run_id, "succeeded", "xtok")
    assert "token→id maps differ" in row.strategy_reason


def test_flow_refuses_forced_logit_on_mismatched_pair(
    prefect_harness, snapshot, sqlite_db, tmp_path: Path
) -> None:
    with pytest.raises(StrategyError):
        distill_flow(
            str(snapshot),
            "tiny-llama-teacher",
            "tiny-llama-student-b",
            config={**FAST, "strategy": "logit"},
            output_dir=str(tmp_path / "out"),
            database_url=str(sqlite_db.url),
        )


def test_cli_distill_without_prefect(snapshot, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    (tmp_path / "cfg.json").write_text(json.dumps(FAST))
    code = main(
        [
            "distill",
            "--snapshot",
            str(snapshot),
            "--teacher",
            "tiny-llama-teacher",
            "--student",
            "tiny-llama-student",
            "--config",
            str(tmp_path / "cfg.json"),
            "--output-dir",
            str(tmp_path / "cli-out"),
            "--max-steps",
            "1",
            "--no-flow",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "✓ tiny-llama-student adapter at" in printed and "(logit KD)" in printed
    with Database(f"sqlite:///{tmp_path / 'cli.db'}").transaction() as session:
        (row,) = list_runs(session=session)
    assert row.status == "succeeded" and row.metrics["global_step"] == 1
    metrics = json.loads((tmp_path / "cli-out" / "metrics.json").read_text())
    assert metrics["global_step"] == 1
    assert json.loads((tmp_path / "cli-out" / "preflight.json").read_text())["strategy"] == "logit"
