"""Bi-weekly teacher fine-tuning: a LoRA on the teacher from the feedback, used by later cycles."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.prepare import prepare_flow
from flows.teacher_gate import evaluate_teacher_adapter
from tasks.config import TeacherConfig
from tasks.cycle import training_slot
from tasks.distill.config import DistillResult
from tasks.results import StageResult
from tasks.settings import with_pipeline_settings
from tasks.teacher_tasks import (
    finetune_teacher_task,
    record_teacher_adapter_task,
    record_teacher_rejection_task,
    teacher_plan_task,
)


class TeacherOutcome(StageResult):
    """What a teacher fine-tuning did: trained a new adapter, or why it skipped."""

    teacher: str
    """The teacher preset."""
    status: Literal["trained", "rejected", "skipped"]
    """trained (and adopted), rejected by the gate (the adapter in use stays), or skipped."""
    detail: str | None = None
    """Why it skipped, or the gate's reasons."""
    trained: DistillResult | None = None
    """The training run that produced the new adapter."""
    pointer: str | None = None
    """The current.json that now points at the new adapter."""


@flow(name="teacher-finetune", persist_result=True, log_prints=True)
@with_pipeline_settings
def teacher_finetune(config: TeacherConfig | None = None) -> TeacherOutcome:
    """SFT a LoRA on the teacher with the newest snapshot; later cycles distill from it.

    The teacher is trained as its own "student" with the distillation code: cross-entropy
    on the feedback targets only (alpha=1, so no teacher signal is needed), warm-started
    from its previous adapter. The adapter is recorded only once training succeeded and the
    gate passed it; a rejected one is noted with its reasons and never distilled from.
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
    # Judged before any cycle distills from it: against the teacher alone and the adapter
    # in use, on the snapshot's held-out split and the fixed benchmark.
    decision = evaluate_teacher_adapter(
        config.teacher,
        str(trained.adapter_dir),
        plan.current_adapter_dir,
        str(snapshot.path),
        config.evaluate,
    )
    reasons = "; ".join(decision.reasons)
    if not decision.promote:
        record_teacher_rejection_task(config.teacher, trained, snapshot, decision.reasons)
        return TeacherOutcome(
            teacher=config.teacher, status="rejected", detail=reasons, trained=trained
        )
    pointer = record_teacher_adapter_task(config.teacher, trained, snapshot, decision.reasons)
    print(f"teacher {config.teacher}: new adapter {trained.adapter_dir} ({pointer})")
    return TeacherOutcome(
        teacher=config.teacher, status="trained", detail=reasons, trained=trained, pointer=pointer
    )
