"""The distill stage's Prefect task: one line, retries and names only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.distill.steps import distill_snapshot

# Training fails loudly: no retries (a retried run resumes its checkpoint when rerun by hand).
distill_task = task(name="distill")(distill_snapshot)
