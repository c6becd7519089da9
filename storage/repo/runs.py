"""Training run rows: start, finish, fail, and lookups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import TrainingRun, utcnow

STRATEGIES = ("logit", "xtok", "sequence")


def create_run(
    *,
    session: Session,
    student: str,
    teacher: str,
    strategy: str,
    strategy_reason: str = "",
    config: dict[str, Any] | None = None,
    snapshot_id: int | None = None,
    output_dir: str | None = None,
) -> TrainingRun:
    """Insert a run in status 'running' and flush so its id is known."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    row = TrainingRun(
        student=student,
        teacher=teacher,
        strategy=strategy,
        strategy_reason=strategy_reason,
        config=config or {},
        snapshot_id=snapshot_id,
        output_dir=output_dir,
        status="running",
    )
    session.add(row)
    session.flush()
    return row


def get_run(*, session: Session, run_id: int) -> TrainingRun | None:
    """The run with this id, None when unknown."""
    return session.get(TrainingRun, run_id)


def _running(session: Session, run_id: int) -> TrainingRun:
    row = session.get(TrainingRun, run_id)
    if row is None:
        raise LookupError(f"training run {run_id} does not exist")
    if row.status != "running":
        raise ValueError(f"training run {run_id} is already {row.status}")
    return row


def finish_run(
    *,
    session: Session,
    run_id: int,
    metrics: dict[str, Any],
    output_dir: str | None = None,
    adapter_path: str | None = None,
) -> TrainingRun:
    """Mark a running run succeeded with its metrics and the adapter it produced."""
    row = _running(session, run_id)
    row.status = "succeeded"
    row.metrics = metrics
    if output_dir is not None:
        row.output_dir = output_dir
    if adapter_path is not None:
        row.adapter_path = adapter_path
    row.finished_at = utcnow()
    session.flush()
    return row


def fail_run(*, session: Session, run_id: int, error: str) -> TrainingRun:
    """Mark a running run failed with the error text."""
    row = _running(session, run_id)
    row.status = "failed"
    row.error = error[:10_000]
    row.finished_at = utcnow()
    session.flush()
    return row


def list_runs(*, session: Session, student: str | None = None) -> list[TrainingRun]:
    """Runs, newest first, optionally for one student."""
    query = select(TrainingRun).order_by(TrainingRun.id.desc())
    if student is not None:
        query = query.where(TrainingRun.student == student)
    return list(session.scalars(query))
