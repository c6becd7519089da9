"""The distill flow: preflight → teacher signals (cached) → LoRA training, recorded as a run."""

from __future__ import annotations

from prefect import flow

from tasks.distill.config import DistillConfig, DistillResult
from tasks.distill.prefect_tasks import distill_task
from tasks.settings import with_pipeline_settings


@flow(name="distill", log_prints=True)
@with_pipeline_settings
def distill_flow(
    snapshot_path: str,
    teacher: str,
    student: str,
    config: DistillConfig | None = None,
    output_dir: str | None = None,
    snapshot_id: int | None = None,
    database_url: str | None = None,
    teacher_adapter_dir: str | None = None,
) -> DistillResult:
    """Distill `teacher` into a LoRA on `student`; returns run id, paths, strategy, metrics."""
    result = distill_task(
        snapshot_path,
        teacher,
        student,
        config or DistillConfig(),
        output_dir,
        snapshot_id,
        database_url,
        teacher_adapter_dir,
    )
    print(f"strategy {result.strategy}: {result.metrics.get('strategy_reason')}")
    print(f"teacher cache: {result.teacher_cache}")
    return result
