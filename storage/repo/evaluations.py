"""Evaluation rows and gate decisions of model versions (keyword-only session, never commits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Evaluation, ModelVersion

LABELS = ("candidate", "stable", "base", "live")


def add_evaluation(
    *,
    session: Session,
    student: str,
    label: str,
    eval_set: str,
    metrics: dict[str, Any],
    model_version_id: int | None = None,
) -> Evaluation:
    """Record the metrics of one model (a version, or the untouched base) on one eval set."""
    if label not in LABELS:
        raise ValueError(f"evaluation label must be one of {LABELS}, got {label!r}")
    if not eval_set:
        raise ValueError("evaluation eval_set must be a non-empty name")
    if model_version_id is not None and session.get(ModelVersion, model_version_id) is None:
        raise LookupError(f"model version {model_version_id} does not exist")
    row = Evaluation(
        model_version_id=model_version_id,
        student=student,
        label=label,
        eval_set=eval_set,
        metrics=dict(metrics),
    )
    session.add(row)
    session.flush()
    return row


def list_evaluations(
    *,
    session: Session,
    student: str,
    eval_set: str | None = None,
    label: str | None = None,
    model_version_id: int | None = None,
) -> list[Evaluation]:
    """A student's evaluations, oldest first, optionally narrowed by set, label or version."""
    query = select(Evaluation).where(Evaluation.student == student)
    if eval_set is not None:
        query = query.where(Evaluation.eval_set == eval_set)
    if label is not None:
        query = query.where(Evaluation.label == label)
    if model_version_id is not None:
        query = query.where(Evaluation.model_version_id == model_version_id)
    return list(session.scalars(query.order_by(Evaluation.created_at, Evaluation.id)))


def metrics_history(*, session: Session, student: str) -> list[dict[str, Any]]:
    """Evaluations joined with version numbers: what the report plots across versions."""
    query = (
        select(Evaluation, ModelVersion.version)
        .outerjoin(ModelVersion, Evaluation.model_version_id == ModelVersion.id)
        .where(Evaluation.student == student)
        .order_by(Evaluation.created_at, Evaluation.id)
    )
    return [
        {
            "version": version,
            "model_version_id": ev.model_version_id,
            "label": ev.label,
            "eval_set": ev.eval_set,
            "metrics": dict(ev.metrics),
            "created_at": ev.created_at.isoformat(),
        }
        for ev, version in session.execute(query)
    ]


def record_gate(
    *,
    session: Session,
    model_version_id: int,
    decision: dict[str, Any],
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Keep a gate decision (and the metrics it used) with the version; a rejection marks it."""
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise LookupError(f"model version {model_version_id} does not exist")
    if "promote" not in decision:
        raise ValueError("gate decision lacks 'promote'")
    version.gate = dict(decision)
    if metrics is not None:
        version.metrics = dict(metrics)
    # Only a pending version changes state here; promotion itself is the publisher's job.
    if not decision["promote"] and version.status == "pending":
        version.status = "rejected"
    session.flush()
    return version


def link_evaluations(*, session: Session, evaluation_ids: list[int], model_version_id: int) -> int:
    """Attach evaluation rows made before the version existed (gate runs before publishing)."""
    if session.get(ModelVersion, model_version_id) is None:
        raise LookupError(f"model version {model_version_id} does not exist")
    rows = list(session.scalars(select(Evaluation).where(Evaluation.id.in_(evaluation_ids))))
    missing = sorted(set(evaluation_ids) - {r.id for r in rows})
    if missing:
        raise LookupError(f"evaluations {missing} do not exist")
    for row in rows:
        row.model_version_id = model_version_id
    session.flush()
    return len(rows)


def live_versions(*, session: Session, student: str | None = None) -> list[ModelVersion]:
    """Published versions (what phones may run), optionally of one student, oldest first."""
    query = select(ModelVersion).where(ModelVersion.status == "published")
    if student is not None:
        query = query.where(ModelVersion.student == student)
    return list(session.scalars(query.order_by(ModelVersion.student, ModelVersion.version)))
