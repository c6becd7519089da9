"""End to end on tiny models: both strategies, the refusal, resume and warm start."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from storage.db import Database
from storage.repo.runs import get_run, list_runs
from tasks.cycle import run_adapter
from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill
from tasks.distill.preflight import StrategyError
from tasks.models.adapters import AdapterMismatchError

FAST = {"max_steps": 4, "save_steps": 100, "logging_steps": 1, "per_device_batch_size": 4}


def test_logit_kd_end_to_end_records_a_run(make_snapshot, sqlite_db: Database, tmp_path: Path):
    snap = make_snapshot(n_train=8)
    cfg = DistillConfig(top_k=8, max_length=96, **FAST)
    res = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=cfg,
        db=sqlite_db,
    )
    assert res.strategy == "logit"
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
    history = json.loads((res.output_dir / "log_history.json").read_text())
    assert any("kd_divergence" in h for h in history)
    assert res.metrics["global_step"] == 4
    # Records emptied by truncation never reach the teacher.
    assert res.metrics["train_records"] + res.metrics["dropped_records"] == 8
    assert res.metrics["teacher_cache"]["misses"] == res.metrics["train_records"] > 0
    assert torch.isfinite(torch.tensor(res.metrics["eval_loss"]))
    assert res.metrics["memory_plan"].startswith("memory plan: ")  # checked before loading
    with sqlite_db.transaction() as session:
        row = get_run(session=session, run_id=res.run_id)
        assert row.status == "succeeded" and row.strategy == "logit"
        assert "identical" in row.strategy_reason
        assert row.metrics["global_step"] == 4
        # The run records the adapter it produced: the one every later reader uses.
        assert run_adapter(row) == str(res.adapter_dir.resolve())


def test_sequence_kd_for_mismatched_vocabularies(make_snapshot, sqlite_db: Database, tmp_path):
    snap = make_snapshot(n_train=6)
    cfg = DistillConfig(strategy="sequence", max_length=96, gen_max_new_tokens=12, **FAST)
    res = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student-b",
        output_dir=tmp_path / "out",
        config=cfg,
        db=sqlite_db,
    )
    assert res.strategy == "sequence"
    assert "forced" in json.loads((tmp_path / "out/preflight.json").read_text())["reason"]
    # Generation is keyed by prompt; every prompt goes through the teacher once.
    counts = {k: res.metrics["teacher_cache"][k] for k in ("hits", "misses", "computed")}
    assert counts == {"hits": 0, "misses": 6, "computed": 6}
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
    with sqlite_db.transaction() as session:
        assert get_run(session=session, run_id=res.run_id).strategy == "sequence"


def test_forced_logit_on_mismatched_vocab_is_refused(make_snapshot, sqlite_db, tmp_path):
    with pytest.raises(StrategyError, match="tiny-llama-teacher → tiny-llama-student-b"):
        distill(
            make_snapshot(n_train=4),
            teacher="tiny-llama-teacher",
            student="tiny-llama-student-b",
            output_dir=tmp_path / "out",
            config=DistillConfig(strategy="logit"),
            db=sqlite_db,
        )
    with sqlite_db.transaction() as session:
        assert list_runs(session=session) == []


class Crash(TrainerCallback):
    """Simulates a killed run: raises once training passes `after` steps."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.after:
            raise KeyboardInterrupt(f"simulated kill after step {state.global_step}")


def test_killed_run_resumes_from_last_checkpoint(make_snapshot, sqlite_db, tmp_path):
    snap = make_snapshot(n_train=8)
    cfg = DistillConfig(
        top_k=4, max_length=80, max_steps=6, save_steps=2, per_device_batch_size=2, logging_steps=1
    )
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        distill(
            snap,
            teacher="tiny-llama-teacher",
            student="tiny-llama-student",
            output_dir=out,
            config=cfg,
            db=sqlite_db,
            callbacks=[Crash(after=3)],
        )
    assert (out / "checkpoints/checkpoint-2").is_dir()
    res = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=out,
        config=cfg,
        db=sqlite_db,
    )
    assert res.metrics["resumed_from"] == "checkpoint-2"
    assert res.metrics["global_step"] == 6
    # The second attempt reuses every signal the killed one computed.
    assert res.metrics["teacher_cache"]["misses"] == 0
    assert res.metrics["teacher_cache"]["hits"] == res.metrics["train_records"]
    with sqlite_db.transaction() as session:
        statuses = [r.status for r in list_runs(session=session)]
    assert statuses == ["succeeded", "failed"]


def test_warm_start_loads_matching_adapter_and_refuses_foreign_one(make_snapshot, tmp_path):
    snap = make_snapshot(n_train=4)
    first = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "a",
        config=DistillConfig(top_k=4, max_length=64, **FAST),
    )
    warm = DistillConfig(
        top_k=4, max_length=64, warm_start_adapter=first.adapter_dir, **{**FAST, "max_steps": 1}
    )
    second = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "b",
        config=warm,
    )
    assert second.metrics["global_step"] == 1
    assert second.metrics["warm_start"] == f"continues {first.adapter_dir}"
    # Another rank is another adapter shape: a fresh start, said in the run's metrics.
    rank = json.loads((first.adapter_dir / "adapter_config.json").read_text())["r"]
    reshaped = replace(warm, lora_r=rank * 2)
    third = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "b2",
        config=reshaped,
    )
    assert third.metrics["warm_start"] == (
        f"fresh adapter: the config changes the stable adapter's r {rank} -> {rank * 2}"
    )
    assert json.loads((third.adapter_dir / "adapter_config.json").read_text())["r"] == rank * 2
    phi = distill(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-phi3-student",
        output_dir=tmp_path / "c",
        config=DistillConfig(top_k=4, max_length=64, **FAST),
    )
    foreign = DistillConfig(top_k=4, max_length=64, warm_start_adapter=phi.adapter_dir, **FAST)
    with pytest.raises(AdapterMismatchError):
        distill(
            snap,
            teacher="tiny-llama-teacher",
            student="tiny-llama-student",
            output_dir=tmp_path / "d",
            config=foreign,
        )


def test_alpha_one_trains_without_teacher_signals(make_snapshot, tmp_path: Path) -> None:
    # Fine-tuning a teacher on feedback is the same code with alpha=1: no teacher pass at all.
    cfg = DistillConfig(alpha=1.0, max_length=64, **FAST)
    res = distill(
        make_snapshot(n_train=4),
        teacher="tiny-llama-teacher",
        student="tiny-llama-teacher",
        output_dir=tmp_path / "t",
        config=cfg,
    )
    assert res.strategy == "logit"
    assert res.metrics["teacher_cache"]["computed"] == 0
    assert res.metrics["global_step"] == 4


def test_snapshot_without_validation_rows_still_trains(sqlite_db: Database, tmp_path: Path):
    # A real prepared snapshot can have an empty validation split (few rows, or no ratio).
    from tasks.prepare import PrepareConfig, build_snapshot
    from tests.tasks.prepare.conftest import insert, make_row

    insert(sqlite_db, [make_row(i) for i in range(6)])
    config = PrepareConfig(train_ratio=0.8, validation_ratio=0.0)
    info = build_snapshot(sqlite_db, config=config, artifact_root=tmp_path / "art")
    assert info.split_sizes["validation"] == 0 and info.split_sizes["train"] > 0
    res = distill(
        Path(info.path),
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=DistillConfig(max_length=64, **FAST),
    )
    assert res.metrics["global_step"] == 4
    assert (Path(res.adapter_dir) / "adapter_model.safetensors").is_file()
