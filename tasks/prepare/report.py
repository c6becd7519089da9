"""Filter statistics as a table and markdown; the prepare flow's steps (tasks in prefect_tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from storage.config import StorageSettings
from storage.db import get_database
from tasks.prepare.config import PrepareConfig
from tasks.prepare.snapshot import build_snapshot
from tasks.prepare.summary import SnapshotSummary


def stats_table(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per counted decision: drops by reason, PII by kind, and the totals."""
    rows = [{"kind": "selected", "name": "rows read", "count": stats.get("selected", 0)}]
    rows += [
        {"kind": "dropped", "name": k, "count": v} for k, v in stats.get("dropped", {}).items()
    ]
    rows += [{"kind": "pii", "name": k, "count": v} for k, v in stats.get("pii", {}).items()]
    for name in ("negatives", "capped", "forced_split", "replay", "records"):
        rows.append({"kind": "total", "name": name, "count": stats.get(name, 0)})
    return rows


def report_markdown(summary: SnapshotSummary) -> str:
    """A short human summary of one prepare run."""
    if summary.fingerprint is None:
        return f"# Prepare\n\nNo snapshot: {summary.skipped_reason}.\n"
    sizes = summary.split_sizes
    lines = [
        f"# Dataset snapshot {summary.snapshot_id}",
        "",
        f"- fingerprint: `{summary.fingerprint}`",
        f"- path: `{summary.path}`",
        f"- watermark: {summary.watermark}; new interactions: {summary.new_records}",
        "- splits: " + ", ".join(f"{k} {v}" for k, v in sizes.items()),
    ]
    if summary.skipped_reason:
        lines.append(f"- reused: {summary.skipped_reason}")
    lines += ["", "| kind | name | count |", "|---|---|---|"]
    lines += [
        f"| {r['kind']} | {r['name']} | {r['count']} |" for r in stats_table(summary.filter_stats)
    ]
    return "\n".join(lines) + "\n"


def snapshot_summary(
    config: PrepareConfig,
    database_url: str | None = None,
    artifact_root: str | None = None,
    settle_seconds: float | None = None,
) -> SnapshotSummary:
    """I/O step (idempotent, so it may retry): build or reuse a snapshot, return its summary."""
    settings = StorageSettings.read()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    root = Path(artifact_root) if artifact_root else settings.resolved_artifact_root()
    info = build_snapshot(
        get_database(settings),
        config=config,
        artifact_root=root,
        settle_seconds=settle_seconds,
    )
    return info.summary()


def publish_report(summary: SnapshotSummary) -> None:
    """Show the filter statistics as a Prefect table and markdown artifact."""
    rows = stats_table(summary.filter_stats)
    create_table_artifact(rows, key="prepare-filter-stats", description="prepare: counts by reason")
    create_markdown_artifact(report_markdown(summary), key="prepare-snapshot")
