"""Typed stage results survive Prefect's result persistence (written, then read back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import flow, get_client, task
from prefect.filesystems import LocalFileSystem

from tasks.cycle import StudentPlan
from tasks.cycle_summary import CycleSummary, StudentRow
from tasks.distill.config import DistillResult
from tasks.evaluate.gate import Check, GateDecision
from tasks.evaluate.verdict import Verdict
from tasks.prepare.summary import SnapshotSummary

SNAPSHOT = SnapshotSummary(
    snapshot_id=3,
    fingerprint="f" * 64,
    path="/data/datasets/snap-3",
    split_sizes={"train": 8, "validation": 1, "test": 1},
    new_records=10,
    watermark=42,
)
SUMMARY = CycleSummary(
    snapshot=SNAPSHOT,
    students=[
        StudentRow(
            student="tiny-llama-student",
            status="published",
            seconds=12.5,
            version=2,
            decision="promote",
            files=["tiny-Q8_0.gguf"],
            teacher_cache={"hits": 3, "misses": 7, "computed": 7, "hit_rate": 0.3},
        ),
        StudentRow(student="tiny-llama-student-b", status="failed", detail="refused"),
    ],
)
VERDICT = Verdict(
    decision="reject",
    gate=GateDecision(
        promote=False,
        reasons=["perplexity +9% on snapshot 3"],
        checks=[Check("perplexity_no_regression[test:snap-3]", False, 0.09, 0.02)],
        set_names={"test:snap-3": "snapshot 3"},
    ),
    detail="perplexity +9% on snapshot 3",
    new_set="test:snap-3",
    new_set_name="snapshot 3",
    set_names={"test:snap-3": "snapshot 3"},
    teacher="no teacher evaluated",
    metrics={"candidate": {"snapshot 3": {"perplexity": 12.5}}},
    report_path="/data/eval/report.md",
    results_paths={"candidate": "/data/eval/candidate.json"},
    evaluation_ids=[4, 5],
)
PLAN = StudentPlan(
    skip=None,
    existing_version=None,
    stable_version=1,
    stable_version_id=7,
    stable_adapter_dir="/data/runs/v1/adapter",
    new_records=10,
)
TRAINED = DistillResult(
    run_id=9,
    output_dir=Path("/data/runs/snapshot-3"),
    adapter_dir=Path("/data/runs/snapshot-3/adapter"),
    strategy="logit",
    metrics={"global_step": 4, "teacher_cache": {"hits": 3, "misses": 7}},
)


def _stored_result(flow_run_id: Any) -> Any:
    """The flow run's result as the API records it: a reference read back from storage."""
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(flow_run_id).state
    assert stored is not None and stored.is_completed()
    return stored.result()


@pytest.mark.parametrize("serializer", ["pickle", "json"])
def test_typed_results_round_trip_through_result_storage(
    prefect_harness: None, tmp_path: Path, serializer: str
) -> None:
    storage = LocalFileSystem(basepath=str(tmp_path))
    storage.save(f"typed-results-{serializer}", overwrite=True)  # server-side, as Prefect needs

    @task(persist_result=True, result_serializer=serializer, result_storage=storage)
    def plan_step() -> StudentPlan:
        return PLAN

    @flow(persist_result=True, result_serializer=serializer, result_storage=storage)
    def hand_over() -> tuple[CycleSummary, Verdict, StudentPlan, DistillResult]:
        return SUMMARY, VERDICT, plan_step(), TRAINED

    state = hand_over(return_state=True)
    assert list(tmp_path.iterdir())  # written to storage, not only kept in memory
    summary, verdict, plan, trained = _stored_result(state.state_details.flow_run_id)
    assert summary == SUMMARY and isinstance(summary.students[0], StudentRow)
    assert verdict == VERDICT and verdict.gate.checks[0].name.startswith("perplexity")
    assert plan == PLAN and plan.stable_adapter_dir == "/data/runs/v1/adapter"
    assert trained == TRAINED and trained.teacher_cache == {"hits": 3, "misses": 7}
