"""What healing restores: the pruned student, healed variants and the teacher on the benchmark.

Each variant is healed from scratch (tasks/distill/heal.py: logit KD from the teacher on the
built-in training prompts, merged), then scored with the unhealed pruned student and the
teacher on the same fixed-benchmark tasks: perplexity of the reference answers, ROUGE-L and
answer match of greedy answers, each beside the pruned student with a paired bootstrap
interval. Prints JSON lines, a markdown table, and a few answers of each model.

    python bench/heal.py                            # the shipped recipe
    python bench/heal.py --steps 100 200 --alpha 0.5 0.0   # a grid of variants
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _answers import interval, means, measure, score_loaded, versus  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from tasks.distill.heal import build_healed  # noqa: E402
from tasks.models.presets import HEAL_SMOLLM2  # noqa: E402
from tasks.sampledata import benchmark_tasks  # noqa: E402


def emit(**row: Any) -> None:
    """One JSON line, flushed."""
    print(json.dumps(row), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shipped = HEAL_SMOLLM2
    parser.add_argument("--steps", type=int, nargs="+", default=[shipped.steps])
    parser.add_argument("--lr", type=float, nargs="+", default=[shipped.learning_rate])
    parser.add_argument(
        "--alpha", type=float, nargs="+", default=[shipped.alpha],
        help="cross-entropy weight on reference answers (the rest is KD)",
    )  # fmt: skip
    parser.add_argument("--heldout", type=int, default=64, help="fixed-benchmark tasks [all 64]")
    parser.add_argument("--new-tokens", type=int, default=48, help="greedy answer length")
    parser.add_argument("--show", type=int, default=4, help="answers quoted per model")
    opt = parser.parse_args()
    held = [
        {"id": t.id, "prompt": t.prompt, "answer": t.answer, "checkable": t.checkable}
        for t in benchmark_tasks()[: opt.heldout]
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-heal-"))
    os.environ.setdefault("DISTILLERY_DATA_DIR", str(tmp / "data"))
    results: dict[str, dict[str, Any]] = {}
    begun = time.perf_counter()
    results["pruned"] = measure(shipped.student, None, held, opt.new_tokens)
    results["teacher"] = measure(shipped.teacher, None, held, opt.new_tokens)
    emit(figure="context", teacher=shipped.teacher, student=shipped.student, heldout=len(held),
         scoring_s=round(time.perf_counter() - begun, 1))  # fmt: skip
    for steps in opt.steps:
        for lr in opt.lr:
            for alpha in opt.alpha:
                recipe = dataclasses.replace(shipped, steps=steps, learning_rate=lr, alpha=alpha)
                name = f"healed steps={steps} lr={lr:g} alpha={alpha:g}"
                target = tmp / f"healed-{recipe.fingerprint()}"
                started = time.perf_counter()
                metrics = build_healed(recipe, target, tmp / f"work-{recipe.fingerprint()}")
                heal_s = time.perf_counter() - started
                model = AutoModelForCausalLM.from_pretrained(target).eval()
                results[name] = score_loaded(
                    model, AutoTokenizer.from_pretrained(target), held, opt.new_tokens
                )
                emit(figure="healed", variant=name, heal_s=round(heal_s, 1),
                     train_loss=metrics.get("train_loss"), **means(results[name]),
                     vs_pruned=versus(results[name], results["pruned"]))  # fmt: skip
    teacher_rouge = means(results["teacher"])["rougeL"]
    print("\n| model | perplexity | ROUGE-L | share of teacher's ROUGE-L | answer match "
          "| ROUGE-L − pruned [95% CI] | answer match − pruned [95% CI] |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, got in results.items():
        m = means(got)
        vs = versus(got, results["pruned"]) if name != "pruned" else {}
        match = (
            f"{m['answer_match']:.3f} (n={m['checkable']})"
            if m["answer_match"] is not None
            else "—"
        )
        print(f"| {name} | {m['perplexity']:.2f} | {m['rougeL']:.3f} | "
              f"{m['rougeL'] / teacher_rouge:.0%} | {match} | {interval(vs.get('rougeL'))} | "
              f"{interval(vs.get('answer_match'))} |")  # fmt: skip
    print()
    for i, row in enumerate(held[: opt.show]):
        print(f"**{row['prompt']}** (reference: {row['answer']!r})")
        for name, got in results.items():
            print(f"- {name}: {got['answers'][i]!r}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
