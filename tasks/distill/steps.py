"""The distill stage as one step: the flow, the CLI and the cycles all run `engine.distill`."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database, get_database
from storage.layout import layout
from tasks.distill.config import DistillConfig, DistillResult


def default_output_dir(student: str, snapshot_path: str) -> str:
    """`<artifact root>/runs/distill/<student>/<snapshot folder name>`."""
    return str(layout().distill_run(student, Path(snapshot_path).name))


def distill_snapshot(
    snapshot_path: str,
    teacher: str,
    student: str,
    config: DistillConfig,
    output_dir: str | None = None,
    snapshot_id: int | None = None,
    database_url: str | None = None,
    teacher_adapter_dir: str | None = None,
) -> DistillResult:
    """Compute step (no retries): preflight, teacher signals, training, preference, the run row.

    One orchestration for every caller (`engine.distill`), so the preference stage, the
    teacher adapter, metrics.json and the TrainingRun row are never skipped by one of them.
    """
    from tasks.distill.engine import distill

    return distill(
        Path(snapshot_path),
        teacher=teacher,
        student=student,
        output_dir=Path(output_dir or default_output_dir(student, snapshot_path)),
        config=config,
        db=Database(database_url) if database_url else get_database(),
        snapshot_id=snapshot_id,
        teacher_adapter_dir=Path(teacher_adapter_dir) if teacher_adapter_dir else None,
    )
