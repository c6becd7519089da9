"""The distill stage's Prefect tasks: one line each, retries and names only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.distill.steps import (
    fail_run_step,
    finish_run_step,
    preflight_step,
    start_run_step,
    teacher_signals_step,
    train_step,
)

# Compute steps fail loudly (no retries); the database writes are idempotent and retry.
preflight_task = task(name="distill-preflight")(preflight_step)
start_run_task = task(name="distill-start-run", retries=2, retry_delay_seconds=2)(start_run_step)
teacher_signals_task = task(name="teacher-signals")(teacher_signals_step)
train_task = task(name="distill-train")(train_step)
finish_run_task = task(name="distill-finish-run", retries=2, retry_delay_seconds=2)(finish_run_step)
fail_run_task = task(name="distill-fail-run", retries=2, retry_delay_seconds=2)(fail_run_step)
