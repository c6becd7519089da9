"""The publish flow: publish exported files as a version, promote it if the gate said so."""

from __future__ import annotations

from typing import Any

from prefect import flow

from storage.registry import ChannelMove
from tasks.publish import PublishedVersion, VersionLineage, gate_says_promote
from tasks.publish_tasks import promote_task, publish_version_task
from tasks.results import StageResult
from tasks.settings import with_pipeline_settings


class PublishOutcome(StageResult):
    """What the publish flow did: the version it published and the channel move, if any."""

    published: PublishedVersion
    """The published version."""
    promotion: ChannelMove | None
    """The move of 'stable' to it; None when the gate did not promote."""


@flow(name="publish")
@with_pipeline_settings
def publish_flow(
    student: str,
    files: list[dict[str, Any]],
    metadata: VersionLineage,
    metrics: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> PublishOutcome:
    """Publish (atomic, idempotent) then move 'stable' when the gate decided to promote.

    `files` are the export task's file entries (path, quantization; size and sha256 are
    checked or computed); `metadata` is the version's lineage (a form in the Prefect UI);
    `metrics` are scores per set as stored (a JSON blob) and `gate` the gate's decision.
    """
    published = publish_version_task(
        student, files, metadata, metrics, gate, database_url=database_url
    )
    promotion = None
    if gate_says_promote(gate):
        reasons = "; ".join((gate or {}).get("reasons", [])[:3])
        promotion = promote_task(
            student,
            published.version,
            reason=f"release gate: {reasons}" if reasons else "release gate passed",
            database_url=database_url,
        )
    return PublishOutcome(published=published, promotion=promotion)
