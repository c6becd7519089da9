"""Bi-weekly teacher fine-tuning: a LoRA on the teacher from the feedback, used by later cycles."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.prepare import prepare_flow
from tasks.config import TeacherConfig
from tasks.cycle import training_slot
from tasks.distill.config import DistillResult
from tasks.results import StageResult
from tasks.teacher_tasks import (
    finetune_teacher_task,
    record_teacher_adapter_task,
    teacher_plan_task,
)


class TeacherOutcome(StageResult):
    """What a teacher fine-tuning did: trained a new adapter, or why it skipped."""

    teacher: str
    """The teacher preset."""
    status: Literal["trained", "skipped"]
    """trained or skipped."""
    detail: str | None = None
    """Why it skipped."""
    trained: DistillResult | None = None
    """The training run that produced the new adapter."""
    pointer: str | None = None
    """The current.json that now points at the new adapter."""


@flow(name="teacher-finetune", persist_result=True, log_prints=True)
def teacher_finetune(config: TeacherConfig | None = None) -> TeacherOutcome:
    """SFT a LoRA on the teacher with the newest snapshot; later cycles distill from it.

    The teacher is trained as its own "student" with the distillation code: cross-entropy
    on the feedback targets only (alpha=1, so no teacher signal is needed), warm-started
    from its previous adapter. The adapter is recorded only after training succeeded.
    """
    config = config or TeacherConfig()
    snapshot = prepare_flow(config=config.prepare, settle_seconds=config.settle_seconds)
    if snapshot.snapshot_id is None:
        return TeacherOutcome(teacher=config.teacher, status="skipped", detail="no data yet")
    plan = teacher_plan_task(config.teacher, snapshot.snapshot_id, config.min_new_records)
    if plan.skip:
        return TeacherOutcome(teacher=config.teacher, status="skipped", detail=plan.skip)
    with training_slot(config.teacher):  # never two trainings of the same model at once
        trained = finetune_teacher_task(
            config.teacher, snapshot, plan.current_adapter_dir, config.distill
        )
    pointer = record_teacher_adapter_task(config.teacher, trained, snapshot)
    print(f"teacher {config.teacher}: new adapter {trained.adapter_dir} ({pointer})")
    return TeacherOutcome(
        teacher=config.teacher, status="trained", trained=trained, pointer=pointer
    )
