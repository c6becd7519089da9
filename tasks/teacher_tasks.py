"""The teacher stage's Prefect tasks: one line each, retries and caching only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.teacher import (
    finetune_teacher,
    record_teacher_adapter,
    record_teacher_rejection,
    resolve_teacher,
    teacher_plan,
)

# Reads and the pointer write are idempotent and retry; training fails loudly.
resolve_teacher_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(resolve_teacher)
teacher_plan_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(teacher_plan)
finetune_teacher_task = task(name="finetune-teacher", persist_result=True)(finetune_teacher)
record_teacher_adapter_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(
    record_teacher_adapter
)
record_teacher_rejection_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(
    record_teacher_rejection
)
