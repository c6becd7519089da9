"""The prepare flow: new feedback into a versioned, leak-free dataset snapshot."""

from __future__ import annotations

from prefect import flow

from tasks.prepare.config import PrepareConfig
from tasks.prepare.prefect_tasks import build_snapshot_task, publish_report_task
from tasks.prepare.summary import SnapshotSummary
from tasks.settings import with_pipeline_settings


@flow(name="prepare", log_prints=True)
@with_pipeline_settings
def prepare_flow(
    config: PrepareConfig | None = None,
    database_url: str | None = None,
    artifact_root: str | None = None,
    settle_seconds: float | None = None,
) -> SnapshotSummary:
    """Build (or reuse) a snapshot from settled new interactions and publish its statistics.

    Storage locations default to the environment.
    Returns snapshot id, fingerprint, path, split sizes, new-record count and skip reason
    (the filter statistics go to the report artifacts, not to the result).
    """
    summary = build_snapshot_task(
        config or PrepareConfig(),
        database_url=database_url,
        artifact_root=artifact_root,
        settle_seconds=settle_seconds,
    )
    publish_report_task(summary)
    print(
        f"snapshot {summary.snapshot_id} {summary.fingerprint}: {summary.split_sizes}"
        + (f" ({summary.skipped_reason})" if summary.skipped_reason else "")
    )
    return summary.model_copy(update={"filter_stats": {}})


if __name__ == "__main__":
    prepare_flow()
