"""`distillery prepare`: build (or reuse) a dataset snapshot from settled new feedback."""

from __future__ import annotations

import argparse
import json

from storage.config import StorageSettings
from storage.db import get_database


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `prepare` command."""
    parser = subparsers.add_parser("prepare", help="build a dataset snapshot from new feedback")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="PrepareConfig override, e.g. --set group_cap=1000 --set keep_unrated=false",
    )
    parser.add_argument("--since", type=int, help="rebuild from this watermark (default: last)")
    parser.add_argument("--settle-seconds", type=float, help="override the watermark settle time")
    parser.add_argument("--flow", action="store_true", help="run as a Prefect flow (artifacts)")
    parser.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict[str, object]:
    """FIELD=VALUE pairs; VALUE is JSON when it parses, else a plain string."""
    overrides: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


def run(args: argparse.Namespace) -> int:
    """Build the snapshot and print its summary as JSON."""
    overrides = parse_overrides(args.set)
    if args.flow:
        from flows.prepare import prepare_flow

        summary = prepare_flow(config=overrides, settle_seconds=args.settle_seconds)
    else:
        from tasks.prepare import PrepareConfig, build_snapshot

        settings = StorageSettings()
        info = build_snapshot(
            get_database(settings),
            config=PrepareConfig.from_dict(overrides),
            artifact_root=settings.resolved_artifact_root(),
            settle_seconds=args.settle_seconds,
            since=args.since,
        )
        summary = info.summary()
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
