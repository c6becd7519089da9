"""One adapter per agent over a student's base: slice, distill, gate, export, publish, promote.

Each agent's adapter is its own version of the student (with `agent` set), gated against
that agent's stable adapter and promoted on its own channel "stable:<agent>", so it is
rolled back on its own (`distillery rollback STUDENT --channel stable:AGENT`).
"""

from __future__ import annotations

from prefect import flow

from flows.evaluate import evaluate_candidate_flow
from flows.release import publish_and_promote, rejected_row
from storage.repo.catalog import agent_channel
from tasks.agent_tasks import (
    distill_agent_task,
    export_agent_task,
    plan_agent_task,
    slice_for_agent_task,
)
from tasks.agents import STABLE
from tasks.config import CycleConfig
from tasks.cycle import training_slot, version_metadata
from tasks.cycle_summary import StudentRow, timed_row
from tasks.cycle_tasks import heal_student_task, record_gate_decision_task
from tasks.prepare.summary import SnapshotSummary
from tasks.teacher_tasks import resolve_teacher_task


@flow(name="agent-cycle", persist_result=True, log_prints=False)
def agent_cycle(
    student: str, agent: str, snapshot: SnapshotSummary, config: CycleConfig
) -> StudentRow:
    """One agent of one student on one snapshot: a summary row like student_cycle's."""
    row = timed_row(f"{student}:{agent}")
    if snapshot.snapshot_id is None or snapshot.path is None:
        return row.done("skipped", detail="no data yet")
    plan = plan_agent_task(student, agent, snapshot.snapshot_id)
    if plan.skip:
        return row.done("skipped", detail=plan.skip)
    sliced = slice_for_agent_task(student, agent, snapshot, config.agent_min_records)
    if sliced.own_rows == 0:  # shared rows alone would only retrain the student's adapter
        return row.done("skipped", detail=f"no new records of agent {agent} in this snapshot")
    teacher = resolve_teacher_task(config.teacher, config.use_teacher_adapter)
    with training_slot(student):
        heal_student_task(student)  # agents run after the student, which healed it already
        trained = distill_agent_task(
            student, agent, teacher, sliced, snapshot.snapshot_id, plan.stable_adapter_dir, config
        )
    verdict = evaluate_candidate_flow(
        student_preset=student,
        candidate_adapter_dir=str(trained.adapter_dir),
        snapshot_path=str(sliced.path),
        stable_adapter_dir=plan.stable_adapter_dir,
        student=student,
        stable_version_id=plan.stable_version_id,
        teacher_preset=teacher.preset,
        teacher_adapter_dir=teacher.adapter_dir,
        config=config.evaluate,
    )
    record_gate_decision_task(trained.run_id, verdict.decision)
    if not verdict.promote:
        return rejected_row(row, verdict)
    exported = export_agent_task(student, trained, sliced, config)
    metadata = {**version_metadata(student, teacher, trained, snapshot), "agent": agent}
    channel = agent_channel(STABLE, agent)
    published = publish_and_promote(student, exported, metadata, verdict, channel=channel)
    return row.done(
        "published",
        version=published.version,
        decision="promote",
        detail=f"{sliced.detail}; {verdict.detail}",
        teacher=verdict.teacher,
        answers=verdict.answers or None,
        why=verdict.why,
        report=verdict.report_path,
        files=published.file_names,
        # Whether phones holding the base get only the adapter, and why (else the merged file).
        phone=exported.adapter_reason or exported.phone_reason or None,
        teacher_cache=trained.teacher_cache,
    )


def agent_rows(snapshot: SnapshotSummary, config: CycleConfig) -> list[StudentRow]:
    """Every (student, agent) of the config on the snapshot; a failure stays in its row."""
    rows: list[StudentRow] = []
    for student in config.students:
        for agent in config.agents:
            state = agent_cycle(student, agent, snapshot, config, return_state=True)
            if state.is_failed() or state.is_crashed():
                name = f"{student}:{agent}"
                rows.append(StudentRow(student=name, status="failed", detail=state.message))
            else:
                rows.append(state.result())
    return rows
