"""The steps after the gate that the student and agent cycles share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.cycle_summary import StudentRow, TimedRow
from tasks.evaluate.prefect_tasks import link_candidate_evaluations_task
from tasks.evaluate.verdict import Verdict
from tasks.publish import PublishedVersion, VersionLineage
from tasks.publish_tasks import promote_task, publish_version_task, start_canary_task

if TYPE_CHECKING:  # the export stage imports llama.cpp helpers: only its type is needed
    from tasks.export.report import ExportReport


def rejected_row(row: TimedRow, verdict: Verdict) -> StudentRow:
    """The summary row of a candidate the gate rejected."""
    return row.done(
        "rejected",
        decision="reject",
        detail=verdict.detail,
        teacher=verdict.teacher,
        answers=verdict.answers or None,
        why=verdict.why,
        report=verdict.report_path,
    )


def publish_and_promote(
    student: str,
    exported: ExportReport,
    metadata: VersionLineage,
    verdict: Verdict,
    channel: str = "stable",
    canary_percent: int | None = None,
) -> PublishedVersion:
    """Publish the exported files with the candidate's metrics, link its evaluations, then
    promote it, or with `canary_percent` start a staged rollout on that share of devices
    (the rollout watcher promotes or rolls it back on live feedback)."""
    candidate = verdict.metrics["candidate"]
    published = publish_version_task(
        student, exported.publishable(), metadata, candidate, verdict.gate
    )
    link_candidate_evaluations_task(verdict.evaluation_ids, published.id)
    if canary_percent:
        start_canary_task(student, published.version, canary_percent, reason=verdict.detail)
    else:
        promote_task(student, published.version, channel=channel, reason=verdict.detail)
    return published
