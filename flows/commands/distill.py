"""`distillery distill --snapshot PATH --teacher T --student S`: one distillation run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `distill` command."""
    parser = subparsers.add_parser("distill", help="distill a teacher into a student LoRA")
    parser.add_argument("--snapshot", required=True, type=Path, help="dataset snapshot dir")
    parser.add_argument("--teacher", required=True, help="teacher preset name")
    parser.add_argument("--student", required=True, help="student preset name")
    parser.add_argument("--output-dir", type=Path, help="default: artifact root/runs/distill/...")
    parser.add_argument("--strategy", choices=["auto", "logit", "xtok", "sequence"], default="auto")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--warm-start", type=Path, help="previous adapter dir to continue from")
    parser.add_argument("--config", type=Path, help="JSON file of DistillConfig fields")
    parser.add_argument("--snapshot-id", type=int, help="the snapshot's row id, for lineage")
    parser.add_argument(
        "--no-flow", action="store_true", help="run in-process without Prefect (no flow run)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the config from the file and flags, run the flow (or the engine), print JSON."""
    if not args.snapshot.exists():
        raise SystemExit(f"distill: snapshot {args.snapshot} does not exist")
    config = json.loads(args.config.read_text()) if args.config else {}
    config["strategy"] = (
        args.strategy if args.strategy != "auto" else config.get("strategy", "auto")
    )
    if args.max_steps is not None:
        config["max_steps"] = args.max_steps
    if args.warm_start is not None:
        config["warm_start_adapter"] = str(args.warm_start)
    if args.no_flow:
        from storage.db import get_database
        from tasks.distill.config import DistillConfig
        from tasks.distill.engine import distill
        from tasks.distill.steps import default_output_dir

        out = args.output_dir or Path(default_output_dir(args.student, str(args.snapshot)))
        result = distill(
            args.snapshot,
            teacher=args.teacher,
            student=args.student,
            output_dir=out,
            config=DistillConfig.from_dict(config),
            db=get_database(),
            snapshot_id=args.snapshot_id,
        ).to_dict()
    else:
        from flows.distill import distill_flow

        result = distill_flow(
            str(args.snapshot),
            args.teacher,
            args.student,
            config=config,
            output_dir=str(args.output_dir) if args.output_dir else None,
            snapshot_id=args.snapshot_id,
        )
    print(json.dumps(result, indent=2, default=str))
    return 0
