"""The publish flow: publish exported files as a version, promote it if the gate said so."""

from __future__ import annotations

from prefect import flow

from storage.registry import ChannelMove
from storage.registry.types import FileSpec
from tasks.evaluate.gate import GateDecision
from tasks.publish import PublishedVersion, VersionLineage
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
    files: list[FileSpec],
    metadata: VersionLineage,
    metrics: dict[str, dict[str, float]] | None = None,
    gate: GateDecision | None = None,
    database_url: str | None = None,
) -> PublishOutcome:
    """Publish (atomic, idempotent) then move 'stable' when the gate decided to promote.

    `files` are the export stage's files (path, quantization; size and sha256 are checked
    or computed); `metadata` is the version's lineage, `metrics` the scores per eval set and
    `gate` the gate's decision: each a form in the Prefect UI.
    """
    published = publish_version_task(
        student, files, metadata, metrics, gate, database_url=database_url
    )
    promotion = None
    if gate is not None and gate.promote:
        reasons = "; ".join(gate.reasons[:3])
        promotion = promote_task(
            student,
            published.version,
            reason=f"release gate: {reasons}" if reasons else "release gate passed",
            database_url=database_url,
        )
    return PublishOutcome(published=published, promotion=promotion)
