"""The evaluate stage's Prefect tasks: one line each, retries and names only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.evaluate.compare import compare_files
from tasks.evaluate.pipeline import (
    evaluation_history,
    gate_results,
    link_candidate_evaluations,
    live_targets,
    name_eval_sets,
    publish_artifacts,
    resolve_eval_sets,
    store_evaluations,
)
from tasks.evaluate.report import write_report
from tasks.evaluate.run import evaluate_model

# Compute steps fail loudly (no retries); reads and idempotent writes retry.
evaluate_model_task = task(name="evaluate-model")(evaluate_model)
compare_task = task(name="compare-results")(compare_files)
gate_results_task = task(gate_results)
write_report_task = task(name="write-evaluation-report")(write_report)
publish_artifacts_task = task(publish_artifacts)
resolve_eval_sets_task = task(retries=2, retry_delay_seconds=2)(resolve_eval_sets)
name_eval_sets_task = task(retries=2, retry_delay_seconds=2)(name_eval_sets)
store_evaluations_task = task(retries=2, retry_delay_seconds=2)(store_evaluations)
evaluation_history_task = task(retries=2, retry_delay_seconds=2)(evaluation_history)
live_targets_task = task(retries=2, retry_delay_seconds=2)(live_targets)
link_candidate_evaluations_task = task(retries=2, retry_delay_seconds=2)(link_candidate_evaluations)
