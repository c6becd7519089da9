"""One adapter per agent over a student's base: slice, distill, gate, export, publish, promote.

Each agent's adapter is its own version of the student (with `agent` set), gated against
that agent's stable adapter and promoted on its own channel "stable:<agent>", so it is
rolled back on its own (`distillery rollback STUDENT --channel stable:AGENT`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task

from flows.evaluate import evaluate_candidate_flow
from storage.config import StorageSettings
from storage.db import get_database
from storage.repo.catalog import agent_channel
from tasks.agents import STABLE, agent_plan, agent_slice
from tasks.cycle import (
    CycleConfig,
    _adapter_of,
    parity_texts,
    record_gate_decision,
    run_dir,
    timed_row,
    training_slot,
    version_metadata,
)
from tasks.evaluate.pipeline import link_candidate_evaluations
from tasks.publish import promote, publish_version
from tasks.teacher import resolve_teacher


@task(name="agent-slice", persist_result=True)
def slice_task(student: str, agent: str, snapshot: dict[str, Any], min_rows: int) -> dict[str, Any]:
    """The agent's rows of the snapshot (with shared rows when it has too few)."""
    # The folder name is the evaluation set's key (test:<name>): unique per snapshot and slice,
    # so scores cached for one agent's test rows are never read back for another's.
    name = f"{snapshot['fingerprint'][:24]}-{agent}-min{min_rows}"
    out = run_dir("agents", f"{student}-{agent}", snapshot["snapshot_id"]) / name
    sliced = agent_slice(get_database(), Path(snapshot["path"]), agent, out, min_rows)
    return {**asdict(sliced), "path": str(sliced.path), "detail": sliced.detail}


@task(name="agent-plan", retries=2, retry_delay_seconds=2, persist_result=True)
def plan_task(student: str, agent: str, snapshot_id: int) -> dict[str, Any]:
    """Skip reason, the agent's stable version and the adapter to warm-start from."""
    database = get_database()
    plan = agent_plan(database, student, agent, snapshot_id)
    warm = None
    if plan.warm_run_id is not None:
        from storage.models import TrainingRun

        with database.transaction() as session:
            run = session.get(TrainingRun, plan.warm_run_id)
            warm = _adapter_of(run.output_dir) if run and run.output_dir else None
    return {**asdict(plan), "warm_adapter": warm}


@task(name="distill-agent", persist_result=True)
def distill_agent(
    student: str,
    agent: str,
    teacher: dict[str, Any],
    sliced: dict[str, Any],
    snapshot_id: int,
    warm_adapter: str | None,
    config: CycleConfig,
) -> dict[str, Any]:
    """Compute task: LoRA-distill `student` on the agent's slice."""
    from tasks.distill import distill
    from tasks.distill.config import DistillConfig

    extra: dict[str, Any] = {}
    if teacher["adapter_dir"]:
        extra["teacher_adapter_dir"] = Path(teacher["adapter_dir"])
    result = distill(
        Path(sliced["path"]),
        teacher=teacher["preset"],
        student=student,
        output_dir=run_dir("agents", f"{student}-{agent}", snapshot_id) / "train",
        config=DistillConfig.from_dict({**config.distill, "warm_start_adapter": warm_adapter}),
        db=get_database(),
        snapshot_id=snapshot_id,
        **extra,
    )
    return result.to_dict()


@task(name="export-agent", persist_result=True)
def export_agent(
    student: str, trained: dict[str, Any], sliced: dict[str, Any], config: CycleConfig
) -> dict[str, Any]:
    """Compute task: merged file for phones without the base, plus base + adapter GGUF."""
    from tasks.export.pipeline import export_for_phones
    from tasks.models.load import materialize_preset
    from tasks.models.presets import get_preset

    report = export_for_phones(
        materialize_preset(student),
        Path(trained["adapter_dir"]),
        Path(trained["output_dir"]) / "export",
        config.quantizations,
        parity_texts(sliced["path"]),
        name=student,
        adapter_gguf=True,
        base_revision=get_preset(student).revision,
        base_cache=StorageSettings().resolved_artifact_root() / "bases" / student,
    )
    if not report.files:
        raise RuntimeError(f"export of {student} kept no file within tolerance: {report.parity}")
    return report.to_dict()


@flow(name="agent-cycle", persist_result=True, log_prints=False)
def agent_cycle(
    student: str, agent: str, snapshot: dict[str, Any], config: CycleConfig
) -> dict[str, Any]:
    """One agent of one student on one snapshot: a summary row like student_cycle's."""
    row = timed_row(f"{student}:{agent}")
    plan = plan_task(student, agent, snapshot["snapshot_id"])
    if plan["skip"]:
        return row.done("skipped", detail=plan["skip"])
    sliced = slice_task(student, agent, snapshot, config.agent_min_records)
    if sliced["own_rows"] == 0:  # shared rows alone would only retrain the student's adapter
        return row.done("skipped", detail=f"no new records of agent {agent} in this snapshot")
    teacher = resolve_teacher(config.teacher, config.use_teacher_adapter)
    with training_slot(student):
        trained = distill_agent(
            student, agent, teacher, sliced, snapshot["snapshot_id"], plan["warm_adapter"], config
        )
    verdict = evaluate_candidate_flow(
        student_preset=student,
        candidate_adapter_dir=trained["adapter_dir"],
        snapshot_path=sliced["path"],
        stable_adapter_dir=plan["warm_adapter"],
        student=student,
        stable_version_id=plan["stable_version_id"],
        teacher_preset=teacher["preset"],
        teacher_adapter_dir=teacher["adapter_dir"],
        **config.evaluate,
    )
    record_gate_decision(trained["run_id"], verdict["decision"])
    if verdict["decision"] != "promote":
        return row.done("rejected", decision="reject", detail=verdict["detail"])
    exported = export_agent(student, trained, sliced, config)
    metadata = {**version_metadata(student, teacher, trained, snapshot), "agent": agent}
    candidate = verdict["metrics"]["candidate"]
    published = publish_version(student, exported["files"], metadata, candidate, verdict["gate"])
    link_candidate_evaluations(verdict["evaluation_ids"], published["id"])
    channel = agent_channel(STABLE, agent)
    promote(student, published["version"], channel=channel, reason=verdict["detail"])
    return row.done(
        "published",
        version=published["version"],
        decision="promote",
        detail=f"{sliced['detail']}; {verdict['detail']}",
        files=[f["name"] for f in published["files"]],
        adapter=exported.get("adapter_reason"),
    )


def agent_rows(snapshot: dict[str, Any], config: CycleConfig) -> list[dict[str, Any]]:
    """Every (student, agent) of the config on the snapshot; a failure stays in its row."""
    rows: list[dict[str, Any]] = []
    for student in config.students:
        for agent in config.agents:
            state = agent_cycle(student, agent, snapshot, config, return_state=True)
            if state.is_failed() or state.is_crashed():
                name = f"{student}:{agent}"
                rows.append({"student": name, "status": "failed", "detail": state.message})
            else:
                rows.append(state.result())
    return rows
