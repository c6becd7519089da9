"""The perpetual cycle on tiny presets under a real Prefect (test-harness) server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.concurrency.sync import concurrency
from pydantic import ValidationError
from sqlalchemy import select

from flows.perpetual import perpetual_cycle
from storage.artifact_store import artifact_store
from storage.models import Channel, Evaluation, ModelVersion, TrainingRun
from tasks.config import CycleConfig
from tasks.cycle import ensure_training_limit, training_slot
from tasks.cycle_summary import StudentRow, summary_of
from tasks.sampledata import training_tasks
from tests.tasks.prepare.conftest import insert, make_row


def seed_rows(start: int, n: int) -> list[dict[str, Any]]:
    """Interactions built from the built-in training tasks, rated 5."""
    tasks = training_tasks()[start : start + n]
    return [
        make_row(start + i, prompt=t.prompt, response=t.answer, category=t.category)
        for i, t in enumerate(tasks)
    ]


def tiny_config(**overrides: Any) -> CycleConfig:
    values: dict[str, Any] = {
        "teacher": "tiny-llama-teacher",
        # student-b has another vocabulary: forced same-vocabulary logit KD is refused for it.
        "students": ["tiny-llama-student", "tiny-llama-student-b"],
        "min_new_records": 10,
        "settle_seconds": 0,
        "distill": {"max_steps": 4, "learning_rate": 3e-3, "save_steps": 100, "strategy": "logit"},
        "evaluate": {
            "scoring": {"limit": 6, "max_new_tokens": 8, "batch_size": 6},
            "n_resamples": 50,
        },
        "export": {"quantizations": ["Q8_0"]},
    }
    return CycleConfig(**{**values, **overrides})


async def _artifacts(key: str) -> list[dict[str, Any]]:
    """Artifacts with this key, newest first (raw filter: the typed client sends nulls)."""
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 10}
    async with get_client() as client:
        response = await client._client.post("/artifacts/filter", json={**body, "offset": 0})
        response.raise_for_status()
        return list(response.json())


def _rows(state: Any) -> dict[str, StudentRow]:
    summary = summary_of(state)
    assert summary is not None, state
    return {row.student: row for row in summary.students}


def test_cycle_publishes_skips_isolates_failures_and_warm_starts(
    prefect_harness: None, store: Any
) -> None:
    insert(store, seed_rows(0, 40))
    first = perpetual_cycle(tiny_config(), return_state=True)

    # One student failed (its training was refused), the other went all the way.
    assert first.is_failed() and first.name == "PartiallyFailed", first.message
    rows = _rows(first)
    assert rows["tiny-llama-student-b"].status == "failed"
    assert "cannot force logit distillation" in str(rows["tiny-llama-student-b"].detail)
    assert rows["tiny-llama-student"].status == "published", rows
    assert rows["tiny-llama-student"].version == 1
    with store.transaction() as session:
        v1 = session.scalar(
            select(ModelVersion).where(ModelVersion.student == "tiny-llama-student")
        )
        assert v1 is not None and v1.status == "published" and v1.snapshot_id is not None
        merged = [f for f in v1.files if f.get("role", "merged") == "merged"]
        assert [f["quantization"] for f in merged] == ["Q8_0"]
        stable = session.scalar(select(Channel).where(Channel.name == "stable"))
        assert stable is not None and stable.model_version_id == v1.id
        v1_run = session.get(TrainingRun, v1.training_run_id)
        assert v1_run is not None and v1_run.config["warm_start_adapter"] is None
        # The release gate runs with its default policy: the first version had to beat the
        # untrained base on the held-out new split and hold on every other set.
        assert v1.gate["promote"] and v1.gate["rule"] == "first_version", v1.gate
        assert v1.gate["checks"] and all(c["passed"] for c in v1.gate["checks"])
        # The improvement the gate saw is in the stored scores too: every set, candidate < base.
        rows = session.scalars(
            select(Evaluation).where(Evaluation.student == "tiny-llama-student")
        ).all()
        by_set: dict[str, dict[str, float]] = {}
        for e in rows:
            by_set.setdefault(e.eval_set, {})[e.label] = e.metrics["perplexity"]
        assert by_set and all({"candidate", "base"} <= set(v) for v in by_set.values()), by_set
        assert all(v["candidate"] < v["base"] for v in by_set.values()), by_set
    summary = asyncio.run(_artifacts("perpetual-cycle-summary"))
    assert summary and "| tiny-llama-student | published | 1 |" in summary[0]["data"]

    # Same data again: nothing is trained or published twice.
    again = perpetual_cycle(tiny_config(students=["tiny-llama-student"]), return_state=True)
    assert again.is_completed(), again.message
    row = _rows(again)["tiny-llama-student"]
    assert row.status == "skipped" and "already built from snapshot" in str(row.detail)

    # A little new data: skipped with the reason; enough: version 2 warm-started from v1.
    insert(store, seed_rows(40, 4), device="phone-2")
    few = perpetual_cycle(tiny_config(students=["tiny-llama-student"]), return_state=True)
    assert "too little new data: 4 new" in str(_rows(few)["tiny-llama-student"].detail)
    insert(store, seed_rows(44, 30), device="phone-3")
    second = perpetual_cycle(tiny_config(students=["tiny-llama-student"]), return_state=True)
    assert second.is_completed(), second.message
    assert _rows(second)["tiny-llama-student"].version == 2
    with store.transaction() as session:
        v2 = session.scalar(
            select(ModelVersion).where(
                ModelVersion.student == "tiny-llama-student", ModelVersion.version == 2
            )
        )
        assert v2 is not None
        v2_run = session.get(TrainingRun, v2.training_run_id)
        assert v2_run is not None
        # Recorded by its key in the store, never this host's path (v1_run's output_dir is
        # read back local, through StorePath).
        v1_key = artifact_store().key(Path(v1_run.output_dir) / "adapter")
        assert v2_run.config["warm_start_adapter"] == v1_key
        assert v2_run.metrics["warm_start"] == f"continues {v1_key}"
        # Version 2 had to improve on the stable v1 on its new split, not merely hold.
        assert v2.gate["rule"] == "stable" and v2.gate["promote"], v2.gate
        improved = [c for c in v2.gate["checks"] if c["name"].startswith("improves_on_stable")]
        assert (
            improved and improved[0]["passed"] and improved[0]["value"] < improved[0]["threshold"]
        )

    # A candidate that learned nothing (learning rate 0: it is the stable v2) ties with stable:
    # the gate rejects it, nothing is published and stable stays on v2.
    insert(store, seed_rows(74, 20), device="phone-4")
    idle = {"max_steps": 4, "learning_rate": 0.0, "save_steps": 100, "strategy": "logit"}
    third = perpetual_cycle(
        tiny_config(students=["tiny-llama-student"], distill=idle), return_state=True
    )
    assert third.is_completed(), third.message
    row = _rows(third)["tiny-llama-student"]
    assert row.status == "rejected" and row.decision == "reject", row
    assert "improvement over stable" in str(row.detail), row.detail
    with store.transaction() as session:
        stable = session.scalar(select(Channel).where(Channel.name == "stable"))
        assert stable is not None and stable.model_version_id == v2.id
        assert session.scalar(select(ModelVersion).where(ModelVersion.version == 3)) is None


def test_unknown_presets_are_refused_before_any_work() -> None:
    with pytest.raises(ValidationError, match="unknown model preset 'no-such-student'"):
        tiny_config(students=["tiny-llama-student", "no-such-student"])
    with pytest.raises(ValidationError, match="known presets: .*tiny-llama-teacher"):
        tiny_config(teacher="gpt-5")


def test_training_slot_admits_one_training_per_student(prefect_harness: None) -> None:
    name = ensure_training_limit("slot-test-student")
    assert ensure_training_limit("slot-test-student") == name  # idempotent
    with training_slot("slot-test-student"):
        # A second training of the same student cannot get the slot while this one holds it.
        with pytest.raises(TimeoutError):
            with concurrency(name, occupy=1, timeout_seconds=3, strict=True):
                pass
        # Another student trains independently.
        with training_slot("slot-test-other-student"):
            pass
    with concurrency(name, occupy=1, timeout_seconds=30, strict=True):
        pass  # released when the first training ended


def test_teacher_finetune_feeds_later_cycles(prefect_harness: None, store: Any) -> None:
    from flows.teacher import teacher_finetune
    from tasks.config import TeacherConfig
    from tasks.teacher import read_pointer

    insert(store, seed_rows(80, 40))
    quick = {"scoring": {"limit": 6, "max_new_tokens": 8, "batch_size": 6}, "n_resamples": 50}
    idle = TeacherConfig(
        teacher="tiny-llama-teacher",
        min_new_records=10,
        settle_seconds=0,
        # Learning rate 0: the new adapter is the teacher itself, no better on anything.
        distill={"max_steps": 2, "save_steps": 100, "learning_rate": 0.0},
        evaluate=quick,
    )
    rejected = teacher_finetune(idle)
    assert rejected.status == "rejected", rejected
    assert "improvement" in str(rejected.detail) or "beat" in str(rejected.detail), rejected
    assert read_pointer("tiny-llama-teacher") is None  # never distilled from
    again = teacher_finetune(idle)  # the same snapshot is not trained twice
    assert again.status == "skipped" and "was rejected" in str(again.detail), again

    insert(store, seed_rows(120, 20), device="phone-2")
    config = idle.model_copy(update={"distill": replace(idle.distill, learning_rate=3e-3)})
    trained = teacher_finetune(config)
    assert trained.status == "trained" and trained.trained is not None, trained
    pointer = read_pointer("tiny-llama-teacher")
    assert pointer is not None and pointer["adapter_dir"] == str(trained.trained.adapter_dir)
    assert pointer["adopted"] and pointer["gate"], pointer  # the gate's reasons beside it
    with store.transaction() as session:
        run = session.get(TrainingRun, trained.trained.run_id)
        assert run is not None and run.student == run.teacher == "tiny-llama-teacher"
        assert run.config["alpha"] == 1.0  # plain SFT on the feedback targets
    again = teacher_finetune(config)
    assert again.status == "skipped" and "already fine-tuned" in str(again.detail)

    # The next cycle distills from the fine-tuned teacher and records it in the lineage.
    cycle = perpetual_cycle(tiny_config(students=["tiny-llama-student"]), return_state=True)
    assert cycle.is_completed(), cycle.message
    with store.transaction() as session:
        version = session.scalar(select(ModelVersion))
        assert version is not None and version.teacher == "tiny-llama-teacher+lora@snapshot-2"


def test_in_process_runs_serialise_training_with_a_file_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a Prefect server (demo, CLI) the slot is a lock file the OS frees on exit."""
    import fcntl

    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    lock = tmp_path / "data" / "artifacts" / "locks" / "training-lock-student.lock"
    with temporary_settings({PREFECT_API_URL: None}):
        with training_slot("lock-student"):
            with lock.open("a") as other, pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a second training
        with lock.open("a") as other:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
