"""The perpetual cycle: prepare, then per student (and agent) distill, evaluate, gate, publish."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.distill_stage import distill_elsewhere
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
    distill_target_task,
    export_target_task,
    heal_student_task,
    plan_target_task,
    record_gate_decision_task,
)
from tasks.prepare.summary import SnapshotSummary
from tasks.settings import with_pipeline_settings
from tasks.target import CycleTarget
from tasks.teacher_tasks import resolve_teacher_task


# log_prints off: libraries that capture stdout (dill, via datasets) would flood the run log.
@flow(name="target-cycle", persist_result=True, log_prints=False)
@with_pipeline_settings
def target_cycle(target: CycleTarget, snapshot: SnapshotSummary, config: CycleConfig) -> StudentRow:
    """One student, or one agent's adapter over it, on one snapshot: a summary row.

    Skipped, rejected (with the gate's reasons) or published and promoted on the target's
    channel (`stable`, or `stable:<agent>` so each agent rolls back on its own).
    """
    row = timed_row(target.name)
    plan = plan_target_task(target, snapshot, config)
    if plan.skip:
        return row.done("skipped", detail=plan.skip, version=plan.existing_version)
    teacher = resolve_teacher_task(config.teacher, config.use_teacher_adapter)
    if config.distill_deployment:  # another pool's worker trains (it takes the slot there)
        assert plan.output_dir is not None  # a plan that trains names its folder
        trained = distill_elsewhere(
            config.distill_deployment, target, snapshot, config, plan.output_dir
        )
    else:
        with training_slot(target.student):  # one training per student at a time, across runs
            heal_student_task(target.student)  # a healed student's one-time base (reused)
            trained = distill_target_task(target, teacher, snapshot, plan, config)
    verdict = evaluate_candidate_flow(
        student_preset=target.student,
        candidate_adapter_dir=str(trained.adapter_dir),
        snapshot_path=str(plan.data_path),
        stable_adapter_dir=plan.stable_adapter_dir,
        earlier_test_paths=plan.earlier_test_paths,
        student=target.student,
        stable_version_id=plan.stable_version_id,
        teacher_preset=teacher.preset,  # the yardstick: scored on the same prompts
        teacher_adapter_dir=teacher.adapter_dir,
        config=config.evaluate,
    )
    record_gate_decision_task(trained.run_id, verdict.decision)
    if not verdict.promote:
        return rejected_row(row, verdict)
    exported = export_target_task(target, trained, plan, config)
    metadata = version_metadata(target.student, teacher, trained, snapshot, agent=target.agent)
    # A staged rollout needs a stable version to hold the other devices: the first version
    # (and an agent's adapter, whose channel has no cohorts yet) goes straight to its channel.
    canary = config.canary_percent if plan.stable_version_id and not target.agent else None
    published = publish_and_promote(
        target.student, exported, metadata, verdict, channel=plan.channel, canary_percent=canary
    )
    rollout = (
        f"canary on {canary} % of devices: stable moves when the rollout watcher promotes it"
        if canary
        else None
    )
    return row.done(
        "published",
        version=published.version,
        decision="promote",
        detail="; ".join(d for d in (plan.detail, rollout, verdict.detail) if d),
        teacher=verdict.teacher,
        answers=verdict.answers or None,
        why=verdict.why,
        report=verdict.report_path,
        files=published.file_names,
        # An agent ships as an adapter: whether phones holding the base get only that.
        phone=(exported.adapter_reason if target.agent else None) or exported.phone_reason or None,
        teacher_cache=trained.teacher_cache,
    )


def _target_row(target: CycleTarget, snapshot: SnapshotSummary, config: CycleConfig) -> StudentRow:
    """The target's row; a failure stays in it and the other targets go on."""
    state = target_cycle(target, snapshot, config, return_state=True)
    if state.is_failed() or state.is_crashed():
        return StudentRow(student=target.name, status="failed", detail=state.message)
    return state.result()


@flow(name="perpetual-cycle", persist_result=True, log_prints=True)
@with_pipeline_settings
def perpetual_cycle(config: CycleConfig | None = None) -> State[CycleSummary]:
    """Prepare a snapshot from new feedback and run every configured student (then every
    student's agents) on it.

    A failing target does not stop the others: its failure is recorded and the final state
    is Failed named "PartiallyFailed" (all failed: "Failed"); the summary table is an artifact.
    """
    config = config or CycleConfig()
    snapshot = prepare_flow(config=config.prepare, settle_seconds=config.settle_seconds)
    if snapshot.snapshot_id is None:  # nothing to train on: one row per student says so
        rows = [
            StudentRow(student=s, status="skipped", detail="no data yet") for s in config.students
        ]
    else:
        targets = [CycleTarget(student=s) for s in config.students] + [
            CycleTarget(student=s, agent=a) for s in config.students for a in config.agents
        ]
        rows = [_target_row(target, snapshot, config) for target in targets]
    markdown = summary_markdown(snapshot, rows)
    create_markdown_artifact(markdown, key="perpetual-cycle-summary", description="cycle summary")
    print(markdown)
    return cycle_state(CycleSummary(snapshot=snapshot, students=rows))
