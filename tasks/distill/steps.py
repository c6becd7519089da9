"""The distillation steps the distill flow composes: they pass paths, ids and small values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.config import StorageSettings
from storage.db import Database, get_database
from tasks.distill.config import DistillConfig
from tasks.distill.preflight import PreflightResult
from tasks.results import StageResult


def _db(database_url: str | None) -> Database:
    return Database(database_url) if database_url else get_database()


def preflight_step(teacher: str, student: str, strategy: str = "auto") -> PreflightResult:
    """Compare tokenizers; the chosen strategy and why (raises when a forced one is impossible)."""
    from tasks.distill.engine import run_preflight

    return run_preflight(teacher, student, strategy)


def start_run_step(
    teacher: str,
    student: str,
    preflight: PreflightResult,
    config: DistillConfig,
    output_dir: str,
    snapshot_id: int | None = None,
    database_url: str | None = None,
) -> int:
    """Insert the TrainingRun row; returns its id."""
    from tasks.distill.engine import record_start

    return record_start(
        _db(database_url), teacher, student, preflight, config, snapshot_id, Path(output_dir)
    )


class TeacherSignals(StageResult):
    """The training data with the teacher's signals, ready for the trainer."""

    prepared_dir: str
    """The tokenized train/validation data with cached teacher signals."""
    teacher_cache: dict[str, float]
    """Teacher-cache counts: hits, misses, computed, hit_rate."""
    train_records: int
    """Training records prepared."""
    dropped_records: int | None = None
    """Records left out (cross-tokenizer: answers that could not be aligned)."""
    aligned_share: float | None = None
    """Share of answer tokens aligned between the two tokenizers (cross-tokenizer KD)."""


def teacher_signals_step(
    snapshot_path: str,
    teacher: str,
    student: str,
    strategy: str,
    config: DistillConfig,
    output_dir: str,
) -> TeacherSignals:
    """Prepared data with cached teacher signals; path and cache hit/miss counts."""
    from tasks.distill.engine import prepare_signals

    signals = prepare_signals(
        Path(snapshot_path),
        teacher=teacher,
        student=student,
        strategy=strategy,
        config=config,
        work_dir=Path(output_dir),
    )
    return TeacherSignals(
        prepared_dir=signals["prepared_dir"],
        teacher_cache=signals["teacher_cache"],
        train_records=signals["train_records"],
        dropped_records=signals.get("dropped_records"),
        aligned_share=signals.get("aligned_share"),
    )


def train_step(
    prepared_dir: str, student: str, output_dir: str, config: DistillConfig
) -> dict[str, Any]:
    """LoRA training (resumes from the last checkpoint); the training metrics."""
    from tasks.distill.train import train_student

    return train_student(
        Path(prepared_dir),
        student=student,
        output_dir=Path(output_dir),
        config=config,
    )


def finish_run_step(run_id: int, metrics: dict[str, Any], database_url: str | None = None) -> None:
    """Mark the run succeeded with its metrics."""
    from tasks.distill.engine import record_finish

    record_finish(_db(database_url), run_id, metrics)


def fail_run_step(run_id: int, error: str, database_url: str | None = None) -> None:
    """Mark the run failed."""
    from tasks.distill.engine import record_failure

    record_failure(_db(database_url), run_id, error)


def default_output_dir(student: str, snapshot_path: str) -> str:
    """`<artifact root>/runs/distill/<student>/<snapshot folder name>`."""
    root = StorageSettings().resolved_artifact_root()
    return str(root / "runs" / "distill" / student / Path(snapshot_path).name)
