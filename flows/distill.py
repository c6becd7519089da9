"""The distill flow: preflight → teacher signals (cached) → LoRA training, recorded as a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from tasks.distill.config import DistillConfig, DistillResult
from tasks.distill.prefect_tasks import (
    fail_run_task,
    finish_run_task,
    preflight_task,
    start_run_task,
    teacher_signals_task,
    train_task,
)
from tasks.distill.steps import default_output_dir


@flow(name="distill", log_prints=True)
def distill_flow(
    snapshot_path: str,
    teacher: str,
    student: str,
    config: dict[str, Any] | None = None,
    output_dir: str | None = None,
    snapshot_id: int | None = None,
    database_url: str | None = None,
) -> DistillResult:
    """Distill `teacher` into a LoRA on `student`; returns run id, paths, strategy, metrics.

    `config` holds DistillConfig overrides (an unknown field fails here, before any work).
    """
    settings = DistillConfig.from_dict(config or {})
    out = output_dir or default_output_dir(student, snapshot_path)
    pre = preflight_task(teacher, student, settings.strategy)
    print(f"strategy {pre.strategy}: {pre.reason}")
    run_id = start_run_task(teacher, student, pre, settings, out, snapshot_id, database_url)
    try:
        signals = teacher_signals_task(snapshot_path, teacher, student, pre.strategy, settings, out)
        print(f"teacher cache: {signals.teacher_cache}")
        metrics = train_task(signals.prepared_dir, student, out, settings)
    except Exception as exc:
        fail_run_task(run_id, f"{type(exc).__name__}: {exc}", database_url)
        raise
    metrics = {
        **metrics,
        "teacher_cache": signals.teacher_cache,
        "strategy_reason": pre.reason,
    }
    finish_run_task(run_id, metrics, database_url)
    return DistillResult(
        run_id=run_id,
        output_dir=Path(out),
        adapter_dir=Path(out) / "adapter",
        strategy=pre.strategy,
        metrics=metrics,
    )
