"""`distillery evaluate candidate|model|fixed-set|live`: evaluate, gate and report students."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command (heavy imports wait until it runs: the CLI starts fast)."""
    parser = subparsers.add_parser("evaluate", help="evaluate and gate student models")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    cand = sub.add_parser("candidate", help="candidate vs stable vs base, gate and report")
    cand.add_argument("--student", required=True, help="student model preset")
    cand.add_argument("--adapter", required=True, help="candidate LoRA adapter folder")
    cand.add_argument("--snapshot", required=True, help="dataset snapshot folder (test split)")
    cand.add_argument("--stable-adapter", help="adapter of the version phones run now")
    cand.add_argument("--earlier", nargs="*", default=[], help="earlier snapshots (forgetting)")
    cand.add_argument("--fixed-set", help="fixed benchmark folder (default: cached copy)")
    cand.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    cand.add_argument("--teacher", help="teacher preset, scored beside the student as yardstick")
    cand.add_argument("--teacher-adapter", help="the teacher's fine-tuned LoRA folder, if any")
    cand.add_argument("--out", help="output folder (default under the data dir)")
    _eval_options(cand)
    cand.set_defaults(func=run_candidate)

    model = sub.add_parser("model", help="metrics of one model on eval sets (no gate)")
    model.add_argument("--preset", required=True)
    model.add_argument("--adapter", help="LoRA adapter folder")
    model.add_argument("--set", dest="sets", nargs="+", help="eval set folders (default: fixed)")
    model.add_argument("--out", default="eval-results.json", help="results JSON path")
    _eval_options(model)
    model.set_defaults(func=run_model)

    fixed = sub.add_parser("fixed-set", help="cache the fixed benchmark set (from shared data)")
    fixed.add_argument("--source", help="records.jsonl or its data folder")
    fixed.add_argument("--out", help="folder (default <data dir>/eval/fixed)")
    fixed.add_argument("--limit", type=int)
    fixed.add_argument("--overwrite", action="store_true")
    fixed.set_defaults(func=run_fixed_set)

    live = sub.add_parser("live", help="re-evaluate every published version on every set")
    live.add_argument("--fixed-set")
    _eval_options(live)
    live.set_defaults(func=run_live)


def _eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="first N examples of each set")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", help="cpu / cuda (default: cuda when available)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "limit": args.limit,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
    }


def run_candidate(args: argparse.Namespace) -> int:
    """Run the evaluation flow; exit 0 when the gate promotes, 3 when it rejects."""
    from flows.evaluate import evaluate_candidate_flow

    result = evaluate_candidate_flow(
        args.student,
        args.adapter,
        args.snapshot,
        stable_adapter_dir=args.stable_adapter,
        earlier_test_paths=args.earlier,
        fixed_set_path=args.fixed_set,
        eval_options=_options(args),
        n_resamples=args.resamples,
        out_dir=args.out,
        device=args.device,
        teacher_preset=args.teacher,
        teacher_adapter_dir=args.teacher_adapter,
    )
    print("\n".join(result["gate"]["reasons"]))
    print(result["teacher"])
    print(f"report: {result['report_path']}")
    return 0 if result["decision"] == "promote" else 3


def run_model(args: argparse.Namespace) -> int:
    """Evaluate one model and print its metrics per set as JSON (with wall time)."""
    from pathlib import Path

    from tasks.evaluate.run import EvalConfig, evaluate_model, load_results
    from tasks.evaluate.sets import FIXED_SET_NAME, cache_fixed_benchmark

    paths = args.sets or [str(cache_fixed_benchmark())]
    sets = {FIXED_SET_NAME if not args.sets else Path(p).name: p for p in paths}
    out = evaluate_model(
        args.preset, args.adapter, sets, args.out, EvalConfig(**_options(args)), args.device
    )
    results = load_results(out)
    summary = {name: s["metrics"] for name, s in results["sets"].items()}
    print(json.dumps({"preset": args.preset, "wall_s": results["wall_s"], "sets": summary}))
    return 0


def run_fixed_set(args: argparse.Namespace) -> int:
    """Write the cached copy of the fixed set and print where it is."""
    from tasks.evaluate.sets import cache_fixed_benchmark, load_eval_set

    path = cache_fixed_benchmark(
        args.out, source=args.source, limit=args.limit, overwrite=args.overwrite
    )
    print(f"{path}: {len(load_eval_set(path))} examples")
    return 0


def run_live(args: argparse.Namespace) -> int:
    """Run the monthly re-evaluation flow and print its rows."""
    from flows.evaluate import reevaluate_live_versions_flow

    result = reevaluate_live_versions_flow(
        fixed_set_path=args.fixed_set, eval_options=_options(args), device=args.device
    )
    for row in result["rows"]:
        print(json.dumps(row))
    return 0
