"""`distillery simulate`: phones upload seeded, rated and corrected feedback over HTTP."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from flows.phones import SimulationConfig, run_simulation


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `simulate` command."""
    parser = subparsers.add_parser("simulate", help="play phones against the feedback API")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--interactions", type=int, default=100, help="total, over all phones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="a JSONL of tasks to draw from (default: the built-in sample tasks)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation and print what was sent and accepted as JSON."""
    config = SimulationConfig(
        phones=args.phones,
        interactions=args.interactions,
        seed=args.seed,
        batch_size=args.batch_size,
        records=args.records,
    )
    report = run_simulation(args.url, config)
    print(json.dumps(dataclasses.asdict(report), indent=2, sort_keys=True))
    return 0
