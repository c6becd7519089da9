"""Bi-weekly teacher fine-tuning: a LoRA on the teacher from the feedback, used by later cycles."""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import BaseModel, Field

from flows.prepare import prepare_flow
from tasks.cycle import training_slot
from tasks.teacher import finetune_teacher, record_teacher_adapter, teacher_plan


class TeacherConfig(BaseModel):
    """What the teacher fine-tuning trains; editable in the Prefect UI."""

    teacher: str = Field("smollm2-135m-instruct", description="teacher model preset")
    min_new_records: int = Field(8, ge=0, description="skip with fewer new records than this")
    prepare: dict[str, Any] = Field(default_factory=dict, description="PrepareConfig overrides")
    settle_seconds: float | None = Field(None, ge=0, description="newest rows left for later")
    distill: dict[str, Any] = Field(
        default_factory=dict, description="training overrides (DistillConfig fields)"
    )


@flow(name="teacher-finetune", persist_result=True, log_prints=True)
def teacher_finetune(config: TeacherConfig | None = None) -> dict[str, Any]:
    """SFT a LoRA on the teacher with the newest snapshot; later cycles distill from it.

    The teacher is trained as its own "student" with the distillation code: cross-entropy
    on the feedback targets only (alpha=1, so no teacher signal is needed), warm-started
    from its previous adapter. The adapter is recorded only after training succeeded.
    """
    config = config or TeacherConfig()
    snapshot = prepare_flow(config=config.prepare, settle_seconds=config.settle_seconds)
    if snapshot.get("snapshot_id") is None:
        return {"teacher": config.teacher, "status": "skipped", "detail": "no data yet"}
    plan = teacher_plan(config.teacher, snapshot["snapshot_id"], config.min_new_records)
    if plan["skip"]:
        return {"teacher": config.teacher, "status": "skipped", "detail": plan["skip"]}
    with training_slot(config.teacher):  # never two trainings of the same model at once
        trained = finetune_teacher(config.teacher, snapshot, plan["warm_adapter"], config.distill)
    pointer = record_teacher_adapter(config.teacher, trained, snapshot)
    print(f"teacher {config.teacher}: new adapter {trained['adapter_dir']} ({pointer})")
    return {"teacher": config.teacher, "status": "trained", **trained, "pointer": pointer}
