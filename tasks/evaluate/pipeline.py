"""The steps the evaluation flows compose: sets, gate, storage, history, artifacts.

Their Prefect tasks are in tasks.evaluate.prefect_tasks.
"""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from sqlalchemy import select

from storage.db import get_database
from storage.layout import layout
from storage.models import DatasetSnapshot, TrainingRun
from storage.repo import evaluations as repo
from tasks.cycle import MissingAdapterError, run_adapter
from tasks.evaluate.gate import Deltas, GateDecision, GatePolicy, decide
from tasks.evaluate.history import VersionScores, version_history
from tasks.evaluate.naming import display_names, identify_sets
from tasks.evaluate.report import summary_rows
from tasks.evaluate.run import load_results, metrics_by_set
from tasks.evaluate.sets import eval_set_paths
from tasks.results import StageResult

TEACHER = "teacher"  # a results label that is measured and reported, never stored as a version


def default_out_dir(student: str) -> str:
    """A fresh folder for one evaluation: <data dir>/eval/runs/<student>-<UTC time>."""
    return str(layout().eval_run(student))


def resolve_eval_sets(
    snapshot_path: str | None, earlier_test_paths: list[str], fixed_set_path: str | None
) -> dict[str, str]:
    """Name -> path of the new test split, earlier test splits and the (cached) fixed set."""
    return eval_set_paths(snapshot_path, earlier_test_paths, fixed_set_path)


def name_eval_sets(keys: list[str], new_set: str | None, student: str | None) -> dict[str, str]:
    """Set key -> the name people read (snapshot number and date, or the version built on it)."""
    with get_database().transaction() as session:
        return display_names(identify_sets(session, keys, new_key=new_set, student=student))


def gate_results(
    candidate_path: str,
    base_path: str,
    stable_path: str | None,
    deltas: dict[str, Deltas],
    new_set: str,
    policy: GatePolicy | None = None,
    teacher_path: str | None = None,
    names: dict[str, str] | None = None,
) -> GateDecision:
    """The gate decision from results files and the deltas against the reference."""
    stable = metrics_by_set(load_results(stable_path)) if stable_path else None
    teacher = metrics_by_set(load_results(teacher_path)) if teacher_path else None
    return decide(
        metrics_by_set(load_results(candidate_path)),
        base=metrics_by_set(load_results(base_path)),
        stable=stable,
        deltas=deltas["stable" if stable_path else "base"],
        new_set=new_set,
        policy=policy or GatePolicy(),
        teacher=teacher,
        names=names,
    )


def store_evaluations(
    student: str,
    results_paths: dict[str, str],
    version_ids: dict[str, int | None] | None = None,
    decision: GateDecision | None = None,
) -> list[int]:
    """Evaluation rows per (model label, eval set); the gate JSON on the candidate's version."""
    version_ids = version_ids or {}
    ids: list[int] = []
    with get_database().transaction(write=True) as session:
        for label, path in results_paths.items():
            if label == TEACHER:
                continue
            for eval_set, metrics in metrics_by_set(load_results(path)).items():
                row = repo.add_evaluation(
                    session=session,
                    student=student,
                    label=label,
                    eval_set=eval_set,
                    metrics=metrics,
                    model_version_id=version_ids.get(label),
                )
                ids.append(row.id)
        candidate_version = version_ids.get("candidate")
        if decision is not None and candidate_version is not None:
            repo.record_gate(
                session=session,
                model_version_id=candidate_version,
                decision=decision.to_dict(),
                metrics=metrics_by_set(load_results(results_paths["candidate"])),
            )
    return ids


def evaluation_history(student: str, stable_version_id: int | None = None) -> list[VersionScores]:
    """Stored scores of `student`'s published versions, in version order (the history plot)."""
    with get_database().transaction() as session:
        return version_history(session, student, stable_version_id)


class LiveVersion(StageResult):
    """A published version to re-evaluate."""

    model_version_id: int
    """Its ModelVersion id."""
    student: str
    """The student preset."""
    version: int
    """Its version number."""
    adapter_dir: str | None
    """Its adapter folder; None when it has none or it is missing (then `missing` says why)."""
    missing: str | None = None
    """Why its adapter could not be found (the re-evaluation skips it, naming this)."""


class LiveTargets(StageResult):
    """What the monthly re-evaluation scores: live versions, on every snapshot still on disk."""

    versions: list[LiveVersion]
    """Published versions, with their adapter folders."""
    snapshot_paths: list[str]
    """Every snapshot dataset still on disk."""


def live_targets() -> LiveTargets:
    """Published versions (with adapter folders) and every snapshot dataset still on disk."""
    with get_database().transaction() as session:
        versions = []
        for v in repo.live_versions(session=session):
            run = session.get(TrainingRun, v.training_run_id) if v.training_run_id else None
            adapter, missing = None, None
            try:
                adapter = run_adapter(run) if run else None
            except MissingAdapterError as exc:
                missing = str(exc)
            versions.append(
                LiveVersion(
                    model_version_id=v.id,
                    student=v.student,
                    version=v.version,
                    adapter_dir=adapter,
                    missing=missing,
                )
            )
        paths = session.scalars(select(DatasetSnapshot.path).order_by(DatasetSnapshot.id))
        snapshots = [p for p in paths if p and Path(p).exists()]
    return LiveTargets(versions=versions, snapshot_paths=snapshots)


def publish_artifacts(
    student: str,
    results_paths: dict[str, str],
    decision: GateDecision,
    report_path: str,
    names: dict[str, str] | None = None,
) -> None:
    """A Prefect markdown artifact (the report, pictures embedded) and a metrics table."""
    key = "".join(c if c.isalnum() else "-" for c in student.lower())
    create_markdown_artifact(
        Path(report_path).read_text(), key=f"evaluation-{key}", description="evaluation report"
    )
    rows = summary_rows({label: load_results(p) for label, p in results_paths.items()}, names)
    create_table_artifact(
        rows, key=f"evaluation-metrics-{key}", description=f"promote={decision.promote}"
    )


def link_candidate_evaluations(evaluation_ids: list[int], model_version_id: int) -> int:
    """Attach a published candidate's evaluation rows to its new version (the history plot
    then shows each version's scores from the run that published it)."""
    with get_database().transaction(write=True) as session:
        return repo.link_evaluations(
            session=session, evaluation_ids=evaluation_ids, model_version_id=model_version_id
        )
