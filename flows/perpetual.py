"""The perpetual cycle: prepare, then per student distill, evaluate, gate, export, publish."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.evaluate import evaluate_candidate_flow
from flows.prepare import prepare_flow
from tasks.cycle import (
    CycleConfig,
    cycle_state,
    distill_student,
    earlier_test_splits,
    export_student,
    record_gate_decision,
    student_plan,
    summary_markdown,
    timed_row,
    training_slot,
    version_metadata,
)
from tasks.evaluate.pipeline import link_candidate_evaluations
from tasks.publish import promote, publish_version
from tasks.teacher import resolve_teacher


# log_prints off: libraries that capture stdout (dill, via datasets) would flood the run log.
@flow(name="student-cycle", persist_result=True, log_prints=False)
def student_cycle(student: str, snapshot: dict[str, Any], config: CycleConfig) -> dict[str, Any]:
    """One student on one snapshot; returns a summary row (skipped / rejected / published)."""
    row = timed_row(student)
    plan = student_plan(student, snapshot["snapshot_id"], config.min_new_records)
    if plan["skip"]:
        return row.done("skipped", detail=plan["skip"], version=plan["existing_version"])
    teacher = resolve_teacher(config.teacher, config.use_teacher_adapter)
    with training_slot(student):  # one training per student at a time, across all runs
        trained = distill_student(student, teacher, snapshot, plan["warm_adapter"], config)
    verdict = evaluate_candidate_flow(
        student_preset=student,
        candidate_adapter_dir=trained["adapter_dir"],
        snapshot_path=snapshot["path"],
        stable_adapter_dir=plan["warm_adapter"],
        earlier_test_paths=earlier_test_splits(snapshot["snapshot_id"]),
        student=student,
        stable_version_id=plan["stable_version_id"],
        teacher_preset=teacher["preset"],  # the yardstick: scored on the same prompts
        teacher_adapter_dir=teacher["adapter_dir"],
        **config.evaluate,
    )
    record_gate_decision(trained["run_id"], verdict["decision"])
    if verdict["decision"] != "promote":
        return row.done(
            "rejected",
            decision="reject",
            detail=verdict["detail"],
            teacher=verdict["teacher"],
            report=verdict["report_path"],
        )
    exported = export_student(student, trained, snapshot, config)
    metadata = version_metadata(student, teacher, trained, snapshot)
    candidate = verdict["metrics"]["candidate"]
    published = publish_version(student, exported["files"], metadata, candidate, verdict["gate"])
    link_candidate_evaluations(verdict["evaluation_ids"], published["id"])
    promote(student, published["version"], reason=verdict["detail"])
    return row.done(
        "published",
        version=published["version"],
        decision="promote",
        detail=verdict["detail"],
        teacher=verdict["teacher"],
        report=verdict["report_path"],
        files=[f["name"] for f in published["files"]],
        phone=exported.get("phone_reason"),
        teacher_cache=trained["metrics"].get("teacher_cache"),
    )


@flow(name="perpetual-cycle", persist_result=True, log_prints=True)
def perpetual_cycle(config: CycleConfig | None = None) -> State:
    """Prepare a snapshot from new feedback and run every configured student on it.

    A failing student does not stop the others: its failure is recorded and the final state
    is Failed named "PartiallyFailed" (all failed: "Failed"); the summary table is an artifact.
    """
    config = config or CycleConfig()
    snapshot = prepare_flow(config=config.prepare, settle_seconds=config.settle_seconds)
    rows: list[dict[str, Any]] = []
    for student in config.students:
        if snapshot.get("snapshot_id") is None:
            rows.append({"student": student, "status": "skipped", "detail": "no data yet"})
            continue
        state = student_cycle(student, snapshot, config, return_state=True)
        if state.is_failed() or state.is_crashed():
            rows.append({"student": student, "status": "failed", "detail": state.message})
        else:
            rows.append(state.result())
    if config.agents and snapshot.get("snapshot_id") is not None:
        from flows.agents import agent_rows

        rows += agent_rows(snapshot, config)
    markdown = summary_markdown(snapshot, rows)
    create_markdown_artifact(markdown, key="perpetual-cycle-summary", description="cycle summary")
    print(markdown)
    return cycle_state({"snapshot": snapshot, "students": rows})
