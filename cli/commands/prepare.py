"""`distillery prepare`: build (or reuse) a dataset snapshot from settled new feedback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from cli.errors import UserError

if TYPE_CHECKING:
    from tasks.prepare.summary import SnapshotSummary


def parse_overrides(items: list[str]) -> dict[str, object]:
    """FIELD=VALUE pairs; VALUE is JSON when it parses, else a plain string."""
    overrides: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UserError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


def describe_snapshot(summary: SnapshotSummary) -> str:
    """What prepare did, in a line or two a person reads."""
    if summary.snapshot_id is None:
        return f"no snapshot yet: {summary.skipped_reason or 'no interactions'}"
    sizes = ", ".join(f"{n} {split}" for split, n in sorted(summary.split_sizes.items()))
    head = f"snapshot {summary.snapshot_id} ({sizes}) at {summary.path}"
    if summary.skipped_reason:
        return f"{head}\n  nothing new built: {summary.skipped_reason}"
    dropped = summary.filter_stats.get("dropped") or {}
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or "none"
    return f"{head}\n  from {summary.new_records} new interactions; dropped: {why}"


def prepare(
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="PrepareConfig override, e.g. --set group_cap=1000 --set keep_unrated=false",
        ),
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="rebuild from this watermark [default: the last one]")
    ] = None,
    settle_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="leave rows younger than this for later [default: 0 on SQLite, 5 on servers]",
        ),
    ] = None,
    flow: Annotated[bool, typer.Option(help="run as a Prefect flow (report artifacts)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> int:
    """Build a versioned, leak-free dataset snapshot (80/10/10) from new feedback."""
    from tasks.config import load_config
    from tasks.prepare.config import PrepareConfig

    config = load_config(PrepareConfig, parse_overrides(set_ or []))
    if flow:
        from flows.prepare import prepare_flow

        summary = prepare_flow(config=config, settle_seconds=settle_seconds)
    else:
        from storage.config import StorageSettings
        from storage.db import get_database
        from tasks.prepare import build_snapshot

        settings = StorageSettings.read()
        info = build_snapshot(
            get_database(settings),
            config=config,
            artifact_root=settings.resolved_artifact_root(),
            settle_seconds=settle_seconds,
            since=since,
        )
        summary = info.summary()
    shown = json.dumps(summary.model_dump(mode="json"), indent=2, sort_keys=True)
    print(shown if as_json else describe_snapshot(summary))
    return 0
