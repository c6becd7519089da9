"""The cycle's Prefect tasks: one line each, retries and caching only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.cycle import record_gate_decision
from tasks.distill.heal import heal_if_needed
from tasks.target import distill_target, export_target, plan_target

# Database reads and writes are idempotent and retry; slicing, training and export fail loudly
# (an agent's plan also writes its slice, which is rewritten whole on a rerun).
plan_target_task = task(name="plan", retries=2, retry_delay_seconds=2, persist_result=True)(
    plan_target
)
record_gate_decision_task = task(retries=2, retry_delay_seconds=2, persist_result=True)(
    record_gate_decision
)
distill_target_task = task(name="distill-target", persist_result=True)(distill_target)
# Healing is a training too: no retry; a built base is reused, so a rerun costs nothing.
heal_student_task = task(name="heal-student", persist_result=True)(heal_if_needed)
export_target_task = task(name="export-target", persist_result=True)(export_target)
