"""Filter statistics as a table and markdown, and the Prefect tasks of the prepare flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from storage.config import StorageSettings
from storage.db import get_database
from tasks.prepare.config import PrepareConfig
from tasks.prepare.snapshot import build_snapshot


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


def report_markdown(summary: dict[str, Any]) -> str:
    """A short human summary of one prepare run."""
    if summary.get("fingerprint") is None:
        return f"# Prepare\n\nNo snapshot: {summary.get('skipped_reason')}.\n"
    sizes = summary.get("split_sizes", {})
    lines = [
        f"# Dataset snapshot {summary['snapshot_id']}",
        "",
        f"- fingerprint: `{summary['fingerprint']}`",
        f"- path: `{summary['path']}`",
        f"- watermark: {summary['watermark']}; new interactions: {summary['new_records']}",
        "- splits: " + ", ".join(f"{k} {v}" for k, v in sizes.items()),
    ]
    if summary.get("skipped_reason"):
        lines.append(f"- reused: {summary['skipped_reason']}")
    lines += ["", "| kind | name | count |", "|---|---|---|"]
    lines += [
        f"| {r['kind']} | {r['name']} | {r['count']} |"
        for r in stats_table(summary["filter_stats"])
    ]
    return "\n".join(lines) + "\n"


@task(name="build-snapshot", retries=2, retry_delay_seconds=5)
def build_snapshot_task(
    config: dict[str, Any],
    database_url: str | None = None,
    artifact_root: str | None = None,
    settle_seconds: float | None = None,
) -> dict[str, Any]:
    """I/O task (retries; idempotent): build or reuse a snapshot, return its small summary."""
    settings = StorageSettings(database_url=database_url) if database_url else StorageSettings()
    root = Path(artifact_root) if artifact_root else settings.resolved_artifact_root()
    info = build_snapshot(
        get_database(settings),
        config=PrepareConfig.from_dict(config),
        artifact_root=root,
        settle_seconds=settle_seconds,
    )
    return info.summary()


@task(name="publish-prepare-report")
def publish_report(summary: dict[str, Any]) -> None:
    """Show the filter statistics as a Prefect table and markdown artifact."""
    rows = stats_table(summary.get("filter_stats", {}))
    create_table_artifact(rows, key="prepare-filter-stats", description="prepare: counts by reason")
    create_markdown_artifact(report_markdown(summary), key="prepare-snapshot")
