"""What a stage run on another host hands back: rows and store keys, read under this host."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.db import Database, get_database
from storage.models import DatasetSnapshot, TrainingRun
from tasks.cycle import run_adapter
from tasks.distill.config import DistillResult
from tasks.prepare.summary import SnapshotSummary


def here(snapshot: SnapshotSummary) -> SnapshotSummary:
    """The snapshot with its folder under this host's artifact root (the row's, not the
    path the preparing host saw)."""
    if snapshot.snapshot_id is None:
        return snapshot
    with get_database().transaction() as session:
        row = session.get(DatasetSnapshot, snapshot.snapshot_id)
        if row is None:
            raise LookupError(f"snapshot {snapshot.snapshot_id} is not in the database")
        return snapshot.model_copy(update={"path": row.path})


def trained_run(db: Database, output_dir: str | Path) -> DistillResult:
    """The newest succeeded training into `output_dir`, as this host sees it (its adapter
    fetched from the shared store when another host trained it)."""
    with db.transaction() as session:
        # StorePath binds the comparison too: both sides are the key relative to the store.
        row = session.scalar(
            select(TrainingRun)
            .where(TrainingRun.output_dir == str(output_dir), TrainingRun.status == "succeeded")
            .order_by(TrainingRun.id.desc())
        )
        if row is None:
            raise LookupError(f"no finished training run recorded for {output_dir}")
        adapter = run_adapter(row)
        if row.output_dir is None or adapter is None:
            raise LookupError(f"training run {row.id} recorded no folder")
        return DistillResult(
            run_id=row.id,
            output_dir=Path(row.output_dir),
            adapter_dir=Path(adapter),
            strategy=row.strategy,
            metrics=dict(row.metrics or {}),
        )
