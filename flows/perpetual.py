"""The perpetual cycle: prepare, then per student distill, evaluate, gate, export, publish."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.evaluate import evaluate_candidate_flow
from flows.prepare import prepare_flow
from flows.release import publish_and_promote, rejected_row
from tasks.config import CycleConfig
from tasks.cycle import training_slot, version_metadata
from tasks.cycle_summary import (
    CycleSummary,
    StudentRow,
    cycle_state,
    summary_markdown,
    timed_row,
)
from tasks.cycle_tasks import (
    distill_student_task,
    earlier_test_splits_task,
    export_student_task,
    heal_student_task,
    record_gate_decision_task,
    student_plan_task,
)
from tasks.prepare.summary import SnapshotSummary
from tasks.teacher_tasks import resolve_teacher_task


# log_prints off: libraries that capture stdout (dill, via datasets) would flood the run log.
@flow(name="student-cycle", persist_result=True, log_prints=False)
def student_cycle(student: str, snapshot: SnapshotSummary, config: CycleConfig) -> StudentRow:
    """One student on one snapshot; returns a summary row (skipped / rejected / published)."""
    row = timed_row(student)
    if snapshot.snapshot_id is None or snapshot.path is None:
        return row.done("skipped", detail="no data yet")
    plan = student_plan_task(student, snapshot.snapshot_id, config.min_new_records)
    if plan.skip:
        return row.done("skipped", detail=plan.skip, version=plan.existing_version)
    teacher = resolve_teacher_task(config.teacher, config.use_teacher_adapter)
    with training_slot(student):  # one training per student at a time, across all runs
        heal_student_task(student)  # a healed student's one-time base (reused once built)
        trained = distill_student_task(student, teacher, snapshot, plan.stable_adapter_dir, config)
    verdict = evaluate_candidate_flow(
        student_preset=student,
        candidate_adapter_dir=str(trained.adapter_dir),
        snapshot_path=snapshot.path,
        stable_adapter_dir=plan.stable_adapter_dir,
        earlier_test_paths=earlier_test_splits_task(snapshot.snapshot_id),
        student=student,
        stable_version_id=plan.stable_version_id,
        teacher_preset=teacher.preset,  # the yardstick: scored on the same prompts
        teacher_adapter_dir=teacher.adapter_dir,
        config=config.evaluate,
    )
    record_gate_decision_task(trained.run_id, verdict.decision)
    if not verdict.promote:
        return rejected_row(row, verdict)
    exported = export_student_task(student, trained, snapshot, config)
    metadata = version_metadata(student, teacher, trained, snapshot)
    published = publish_and_promote(student, exported, metadata, verdict)
    return row.done(
        "published",
        version=published.version,
        decision="promote",
        detail=verdict.detail,
        teacher=verdict.teacher,
        answers=verdict.answers or None,
        why=verdict.why,
        report=verdict.report_path,
        files=published.file_names,
        phone=exported.phone_reason or None,
        teacher_cache=trained.teacher_cache,
    )


@flow(name="perpetual-cycle", persist_result=True, log_prints=True)
def perpetual_cycle(config: CycleConfig | None = None) -> State[CycleSummary]:
    """Prepare a snapshot from new feedback and run every configured student on it.

    A failing student does not stop the others: its failure is recorded and the final state
    is Failed named "PartiallyFailed" (all failed: "Failed"); the summary table is an artifact.
    """
    config = config or CycleConfig()
    snapshot = prepare_flow(config=config.prepare, settle_seconds=config.settle_seconds)
    rows: list[StudentRow] = []
    for student in config.students:
        if snapshot.snapshot_id is None:
            rows.append(StudentRow(student=student, status="skipped", detail="no data yet"))
            continue
        state = student_cycle(student, snapshot, config, return_state=True)
        if state.is_failed() or state.is_crashed():
            rows.append(StudentRow(student=student, status="failed", detail=state.message))
        else:
            rows.append(state.result())
    if config.agents and snapshot.snapshot_id is not None:
        from flows.agents import agent_rows

        rows += agent_rows(snapshot, config)
    markdown = summary_markdown(snapshot, rows)
    create_markdown_artifact(markdown, key="perpetual-cycle-summary", description="cycle summary")
    print(markdown)
    return cycle_state(CycleSummary(snapshot=snapshot, students=rows))
