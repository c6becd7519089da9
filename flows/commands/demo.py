"""`distillery demo`: service, simulated phones and one full cycle on the embedded models."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the loop once: service, phones uploading feedback, one full cycle",
        description="Runs again continue the loop: new feedback, the next version.",
    )
    parser.add_argument("--phones", type=int, default=6)
    parser.add_argument("--interactions", type=int, default=20, help="per phone")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one per run")
    parser.add_argument("--teacher", default="smollm2-135m-instruct")
    parser.add_argument("--student", default="smollm2-pruned-student")
    parser.add_argument("--max-steps", type=int, default=10, help="training steps per cycle")
    parser.add_argument("--eval-limit", type=int, default=12, help="examples per eval set")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when the cycle completed."""
    # Prefect reads its settings on import. Its in-process API server gets 20 s to start by
    # default, too little on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    # Weight-loading and dataset bars would drown the stage lines (tqdm reads this on import).
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from flows.demo import DemoOptions, run_demo

    options = DemoOptions(
        phones=args.phones,
        interactions=args.interactions,
        seed=args.seed,
        teacher=args.teacher,
        student=args.student,
        max_steps=args.max_steps,
        eval_limit=args.eval_limit,
        port=args.port,
    )
    result = run_demo(options)
    return 0 if result["state"] == "Completed" else 1
