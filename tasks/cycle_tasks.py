"""The cycle's Prefect tasks: one line each, retries and caching only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.cycle import (
    distill_student,
    earlier_test_splits,
    export_student,
    record_gate_decision,
    student_plan,
)
from tasks.distill.heal import heal_if_needed

# Database reads and writes are idempotent and retry; training and export fail loudly.
student_plan_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(student_plan)
record_gate_decision_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(
    record_gate_decision
)
distill_student_task = task(name="distill-student", persist_result=True)(distill_student)
# Healing is a training too: no retry; a built base is reused, so a rerun costs nothing.
heal_student_task = task(name="heal-student", persist_result=True)(heal_if_needed)
earlier_test_splits_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(
    earlier_test_splits
)
export_student_task = task(name="export-student", persist_result=True)(export_student)
