"""`distillery preflight`: which distillation a teacher/student pair gets, and why."""

from __future__ import annotations

import argparse
import json

STRATEGIES = ("auto", "logit", "xtok", "sequence")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `preflight` command."""
    from tasks.models.presets import PRESETS

    presets = sorted(PRESETS)
    parser = subparsers.add_parser(
        "preflight",
        help="compare a pair's tokenizers: shared tokens and the chosen strategy",
        description=(
            "Compare the teacher's and the student's tokenizers (the preset's own, else "
            "llama.cpp's real vocabulary of it) and print the share of shared tokens and the "
            "strategy distillation would use: logit (identical tokenizers), xtok "
            "(cross-tokenizer logit KD) or sequence (teacher answers)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    names = ", ".join(presets)
    parser.add_argument("--teacher", choices=presets, metavar="PRESET", help=f"one of: {names}")
    parser.add_argument("--student", choices=presets, metavar="PRESET", help=f"one of: {names}")
    parser.add_argument(
        "--seed-pairs", action="store_true", help="all 9 seed teacher/student pairs"
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="the strategy to check; a forced one the pair cannot take exits with status 2",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the pair report(s); a forced strategy the pair cannot take exits 2."""
    from tasks.distill.preflight import StrategyError
    from tasks.distill.vocabs import pair_report, report_table, seed_pairs

    if args.seed_pairs == bool(args.teacher or args.student):
        raise SystemExit("give --teacher T --student S, or --seed-pairs")
    if not args.seed_pairs and not (args.teacher and args.student):
        raise SystemExit("give both --teacher and --student")
    pairs = seed_pairs() if args.seed_pairs else [(args.teacher, args.student)]
    try:
        reports = [pair_report(t, s, args.strategy) for t, s in pairs]
    except StrategyError as exc:
        print(f"error: {exc}")
        return 2
    if args.json:
        for report in reports:
            print(json.dumps(report.to_dict()))
        return 0
    print(report_table(reports))
    for report in reports:
        print(f"\n{report.teacher} → {report.student} ({report.teacher_source} / "
              f"{report.student_source}): {report.reason}")  # fmt: skip
    return 0
