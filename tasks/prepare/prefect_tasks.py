"""The prepare stage's Prefect tasks: one line each, retries and names only (see README)."""

from __future__ import annotations

from prefect import task

from tasks.prepare.report import publish_report, snapshot_summary

# I/O: building is idempotent (same fingerprint, same snapshot), so a retry is safe.
build_snapshot_task = task(name="build-snapshot", retries=2, retry_delay_seconds=5)(
    snapshot_summary
)
publish_report_task = task(name="publish-prepare-report")(publish_report)
