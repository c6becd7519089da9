"""One training target of a cycle: a student, or one agent's adapter over a student.

Students and agents go through the same steps (plan, distill, gate, export, publish); they
differ only in what the plan decides: the data (the snapshot or the agent's slice of it),
where training writes, which channel the version is promoted on and which adapter it
warm-starts from. The plan carries those, so flows/perpetual.py has one cycle for both.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.db import get_database
from storage.layout import layout
from storage.repo.catalog import agent_channel
from tasks.agents import plan_agent, slice_for_agent
from tasks.config import CycleConfig
from tasks.cycle import STABLE, earlier_test_splits, export_trained, student_plan
from tasks.distill.config import DistillResult
from tasks.prepare.summary import SnapshotSummary
from tasks.results import StageResult
from tasks.teacher import TeacherChoice

if TYPE_CHECKING:  # the export package pulls in torch: only its type is needed here
    from tasks.export.report import ExportReport


class CycleTarget(StageResult):
    """What one row of the cycle trains: a student's adapter, or an agent's over it."""

    student: str
    """The student preset."""
    agent: str | None = None
    """The agent whose adapter is trained; None for the student's own."""

    @property
    def name(self) -> str:
        """`student` or `student:agent`, as the summary row names it."""
        return f"{self.student}:{self.agent}" if self.agent else self.student


class TargetPlan(StageResult):
    """Whether a target trains on this snapshot, on what data, from and against what."""

    skip: str | None
    """Why the target is skipped; None when it trains."""
    existing_version: int | None = None
    """The version already built from this snapshot (when that is why it skips)."""
    stable_version_id: int | None = None
    """ModelVersion id of the version on the target's channel (the gate's reference)."""
    stable_adapter_dir: str | None = None
    """Its adapter: the candidate warm-starts from it and is compared with it."""
    data_path: str | None = None
    """The snapshot to train and test on: the cycle's, or the agent's slice of it."""
    earlier_test_paths: list[str] = []
    """Test splits of earlier snapshots (forgetting checks; a student's only)."""
    output_dir: str | None = None
    """Where training writes: fixed per snapshot, so a retried run resumes its checkpoint."""
    channel: str = STABLE
    """The channel a promoted version moves: stable, or stable:<agent>."""
    detail: str | None = None
    """A line about the data (an agent's own and shared rows), shown before the gate's."""
    cold_start: str | None = None
    """Why the candidate trains from the base, not warm from stable (an erasure)."""


def plan_target(target: CycleTarget, snapshot: SnapshotSummary, config: CycleConfig) -> TargetPlan:
    """Read step: skip or train, and the target's data, folders and reference version."""
    snapshot_id = snapshot.snapshot_id
    if snapshot_id is None or snapshot.path is None:
        return TargetPlan(skip="no data yet")
    if target.agent is None:
        plan = student_plan(target.student, snapshot_id, config.min_new_records)
        if plan.skip:
            return TargetPlan(skip=plan.skip, existing_version=plan.existing_version)
        return TargetPlan(
            skip=None,
            stable_version_id=plan.stable_version_id,
            stable_adapter_dir=plan.stable_adapter_dir,
            data_path=snapshot.path,
            earlier_test_paths=earlier_test_splits(snapshot_id),
            output_dir=str(layout().training_run("students", target.student, snapshot_id)),
            cold_start=plan.cold_start,
            detail=plan.cold_start,
        )
    agent = plan_agent(target.student, target.agent, snapshot_id)
    if agent.skip:
        return TargetPlan(skip=agent.skip)
    sliced = slice_for_agent(target.student, target.agent, snapshot, config.agent_min_records)
    if sliced.own_rows == 0:  # shared rows alone would only retrain the student's adapter
        return TargetPlan(skip=f"no new records of agent {target.agent} in this snapshot")
    run = layout().training_run("agents", f"{target.student}-{target.agent}", snapshot_id)
    return TargetPlan(
        skip=None,
        stable_version_id=agent.stable_version_id,
        stable_adapter_dir=agent.stable_adapter_dir,
        data_path=str(sliced.path),
        output_dir=str(run / "train"),
        channel=agent_channel(STABLE, target.agent),
        detail=sliced.detail,
    )


def distill_target(
    target: CycleTarget,
    teacher: TeacherChoice,
    snapshot: SnapshotSummary,
    plan: TargetPlan,
    config: CycleConfig,
) -> DistillResult:
    """Compute step (no retries): LoRA-distill the target from the teacher on its data."""
    from tasks.distill import distill

    if plan.data_path is None or plan.output_dir is None or snapshot.snapshot_id is None:
        raise ValueError(f"{target.name}: nothing to train on ({plan.skip or 'no data'})")
    extra: dict[str, Any] = {}
    if teacher.adapter_dir:
        if "teacher_adapter_dir" not in inspect.signature(distill).parameters:
            raise RuntimeError(
                "distill() cannot load a teacher adapter; set use_teacher_adapter=false"
            )
        extra["teacher_adapter_dir"] = Path(teacher.adapter_dir)
    warm = (
        Path(plan.stable_adapter_dir) if plan.stable_adapter_dir and not plan.cold_start else None
    )
    return distill(
        Path(plan.data_path),
        teacher=teacher.preset,
        student=target.student,
        output_dir=Path(plan.output_dir),
        config=replace(config.distill, warm_start_adapter=warm),
        db=get_database(),
        snapshot_id=snapshot.snapshot_id,
        **extra,
    )


def export_target(
    target: CycleTarget, trained: DistillResult, plan: TargetPlan, config: CycleConfig
) -> ExportReport:
    """Compute step: the merged file for phones, plus base + adapter when deltas are on.

    An agent always ships its adapter (phones holding the base switch agents by adapter);
    a student does when `export.adapter_gguf` is set.
    """
    deltas = True if target.agent else config.export.adapter_gguf
    return export_trained(target.student, trained, str(plan.data_path), config, deltas)
