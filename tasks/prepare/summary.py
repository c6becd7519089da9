"""The prepare stage's result: the snapshot the cycle trains on, or why there is none."""

from __future__ import annotations

from typing import Any

from tasks.results import StageResult


class SnapshotSummary(StageResult):
    """What the prepare stage hands on: the snapshot to train on, or why there is none."""

    snapshot_id: int | None
    """Id of the snapshot row; None when no snapshot exists yet."""
    fingerprint: str | None
    """Hash of the data and the preprocessing; None when no snapshot exists yet."""
    path: str | None
    """Folder of the saved splits."""
    split_sizes: dict[str, int] = {}
    """Rows per split (train, validation, test)."""
    new_records: int = 0
    """Interactions this snapshot added since the previous one."""
    skipped_reason: str | None = None
    """Why nothing new was built ("no new interactions", "snapshot exists"), else None."""
    watermark: int = 0
    """Highest interaction sequence number the snapshot covers."""
    filter_stats: dict[str, Any] = {}
    """Counts of the filtering decisions (a JSON blob shown in reports)."""
