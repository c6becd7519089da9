"""Quality kept: teacher, base, SFT on feedback or teacher answers, logit KD, KD + DPO or KTO.

One run, the same training records and steps for every variant; on held-out user-oriented
tasks: perplexity of the reference answers, ROUGE-L of greedy answers, answer match on the
checkable sample tasks (the answer in the first line), each variant beside the base student
with a paired bootstrap interval. Prints JSON lines, then a markdown table.

    python bench/quality.py --pair tiny-xtok     # tiny random models, other vocabularies
    python bench/quality.py --pair smollm2       # real SmolLM2 teacher and pruned student
    python bench/quality.py --pair smollm2 --variants kd_dpo kd_kto   # the preference stage
    python bench/quality.py --cycles 4           # 4 perpetual cycles: the curve over releases

The feedback is simulated from the seed tasks: every fourth record is a user's correction
(its reference answer) of a worse answer (the reference cut to its first half), which is
what the DPO stage learns from. KTO takes the well-rated answers and corrections as good and
thumbs-down answers without a correction (the halved reference, rated 1, on a further fourth
of the prompts) as bad. The preference variants are also compared with logit KD, the stage
they follow. Perplexities use each model's own tokenizer: the teacher's
is comparable to the students' only when they share one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any, get_args

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from _answers import interval, measure  # noqa: E402
from datasets import Dataset, DatasetDict  # noqa: E402

from tasks.distill.config import DistillConfig  # noqa: E402
from tasks.distill.engine import distill  # noqa: E402
from tasks.distill.packing import Batching  # noqa: E402
from tasks.evaluate.bootstrap import paired_bootstrap  # noqa: E402
from tasks.prepare.columns import NEGATIVE_FEATURES  # noqa: E402
from tasks.sampledata import benchmark_tasks, training_tasks  # noqa: E402

PAIRS = {
    "tiny-xtok": ("tiny-llama-teacher", "tiny-llama-student-b"),
    "smollm2": ("smollm2-135m-instruct", "smollm2-pruned-student"),
}
VARIANTS = (
    "teacher", "base", "sft_feedback", "sft_teacher_answers", "logit_kd", "kd_dpo", "kd_kto",
)  # fmt: skip
# A variant's own baseline beside the base student: the preference stage runs after logit KD.
AFTER = {"kd_dpo": "logit_kd", "kd_kto": "logit_kd"}


def emit(**row: Any) -> None:
    """One JSON line, flushed."""
    print(json.dumps(row), flush=True)


def load_tasks(
    n_train: int, n_heldout: int, draw: str = "kinds", seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training rows, held-out rows) from the built-in sample tasks: prompt, answer, checkable.

    Held-out rows are the fixed benchmark split, which no training row shares a prompt with,
    interleaved by category. Training rows are a prefix of the tasks interleaved by category
    (`kinds`: every kind of task about equally often, as the demo's phones ask), or a random
    sample of them (`pool`: in the sample data's proportions, 27 % arithmetic).
    """

    def as_row(t: Any) -> dict[str, Any]:
        return {"prompt": t.prompt, "answer": t.answer, "checkable": t.checkable}

    tasks = training_tasks()
    picked = tasks[:n_train] if draw == "kinds" else random.Random(seed).sample(tasks, n_train)
    held = [as_row(t) for t in benchmark_tasks()][:n_heldout]
    return [as_row(t) for t in picked], held


def feedback_snapshot(path: Path, train: list[dict[str, Any]], held: list[dict[str, Any]]) -> Path:
    """A snapshot in the prepare stage's columns: a fourth are corrections; with negatives."""

    def messages(r: dict[str, Any]) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": r["prompt"]},
            {"role": "assistant", "content": r["answer"]},
        ]

    corrected = [i % 4 == 0 for i in range(len(train))]
    worse = [r["answer"][: max(1, len(r["answer"]) // 2)] for r in train]
    splits = {
        "train": Dataset.from_dict(
            {
                "messages": [messages(r) for r in train],
                "target_source": ["correction" if c else "response" for c in corrected],
                "corrected_response": [
                    w if c else None for w, c in zip(worse, corrected, strict=True)
                ],
                "rating": [2 if c else 5 for c in corrected],
            }
        ),
        "validation": Dataset.from_dict({"messages": [messages(r) for r in held[:4]]}),
    }
    DatasetDict(splits).save_to_disk(str(path))
    # Thumbs down without a correction (KTO's undesirable side): the halved answer, rated 1.
    bad = [i for i in range(len(train)) if i % 4 == 2]
    negatives = {
        "id": [f"neg-{i}" for i in bad],
        "messages": [
            [
                {"role": "user", "content": train[i]["prompt"]},
                {"role": "assistant", "content": worse[i]},
            ]
            for i in bad
        ],  # fmt: skip
        "prompt": [train[i]["prompt"] for i in bad],
        "rejected": [worse[i] for i in bad],
        "category": ["qa"] * len(bad),
        "model_name": ["bench"] * len(bad),
        "model_version": ["1"] * len(bad),
        "prompt_hash": [str(i) for i in bad],
        "rating": [1] * len(bad),
        "split": ["train"] * len(bad),
    }
    Dataset.from_dict(negatives, features=NEGATIVE_FEATURES).save_to_disk(str(path / "negatives"))
    return path


def summary(
    name: str, got: dict[str, Any], base: dict[str, Any] | None, before: dict[str, Any] | None
) -> dict[str, Any]:
    """Means, perplexity, and paired bootstrap differences to the base (and preceding) model."""
    row: dict[str, Any] = {
        "variant": name,
        "perplexity": math.exp(float(np.nanmean(got["nll"]))),
        "rougeL": float(np.mean(got["rougeL"])),
        "exact_match": float(np.nanmean(got["exact"]))
        if not np.all(np.isnan(got["exact"]))
        else None,
        "checkable": int(np.sum(~np.isnan(got["exact"]))),
    }
    if base is not None and name != "base":
        row["rougeL_vs_base"] = paired_bootstrap(got["rougeL"], base["rougeL"])
        row["nll_vs_base"] = paired_bootstrap(got["nll"], base["nll"])
    if before is not None:
        row["rougeL_vs_" + AFTER[name]] = paired_bootstrap(got["rougeL"], before["rougeL"])
        row["nll_vs_" + AFTER[name]] = paired_bootstrap(got["nll"], before["nll"])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), default="tiny-xtok")
    parser.add_argument("--train", type=int, default=32, help="training records")
    parser.add_argument("--heldout", type=int, default=24, help="held-out tasks")
    parser.add_argument(
        "--steps", type=int, default=16,
        help="training steps per variant, or per cycle with --cycles (the demo trains 20)",
    )  # fmt: skip
    parser.add_argument("--new-tokens", type=int, default=48, help="greedy answer length")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
        help="variants to run [default: all]; base always runs, and a preference variant "
        "brings logit_kd",
    )  # fmt: skip
    parser.add_argument(
        "--cycles", type=int, default=0,
        help="run N perpetual cycles instead (service, simulated phones, the whole cycle) and "
        "report the published version after each on the fixed benchmark [0: variants]",
    )  # fmt: skip
    parser.add_argument(
        "--student", default="smollm2-pruned-student",
        choices=["smollm2-pruned-student", "smollm2-healed-student"],
        help="the student of --cycles [smollm2-pruned-student]",
    )  # fmt: skip
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the variants")
    parser.add_argument(
        "--batching", choices=get_args(Batching), default="auto",
        help="training batches of the variants (DistillConfig.batching) [auto]",
    )  # fmt: skip
    parser.add_argument(
        "--batch-tokens", type=int, default=None,
        help="token slots per training batch of the variants (DistillConfig.batch_tokens) "
        "[none: 4 records a batch]",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=0,
        help="training seed of the variants (DistillConfig.seed: adapter init, record order) [0]",
    )  # fmt: skip
    parser.add_argument(
        "--draw", choices=["kinds", "pool"], default="kinds",
        help="training records: every kind of task in turn, or a random sample of the pool "
        "(its proportions; --seed) [kinds]",
    )  # fmt: skip
    parser.add_argument("--phones", type=int, default=6, help="phones per cycle (--cycles)")
    parser.add_argument("--interactions", type=int, default=20,
                        help="interactions per phone per cycle (--cycles)")  # fmt: skip
    opt = parser.parse_args()
    if opt.cycles:
        return cycles(opt)
    wanted = {"base", *opt.variants, *(AFTER[v] for v in opt.variants if v in AFTER)}
    teacher, student = PAIRS[opt.pair]
    train, held = load_tasks(opt.train, opt.heldout, opt.draw, opt.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    os.environ.setdefault("DISTILLERY_DATA_DIR", str(tmp / "data"))
    snap = feedback_snapshot(tmp / "snap", train, held)
    emit(figure="context", pair=opt.pair, teacher=teacher, student=student, train=len(train),
         heldout=len(held), steps=opt.steps, batching=opt.batching,
         batch_tokens=opt.batch_tokens, seed=opt.seed, draw=opt.draw)  # fmt: skip
    common = {"max_steps": opt.steps, "save_steps": 10**6, "logging_steps": 4, "max_length": 256,
              "per_device_batch_size": 4, "grad_accum": 1, "learning_rate": opt.lr, "top_k": 16,
              "gen_max_new_tokens": opt.new_tokens, "batching": opt.batching,
              "batch_tokens": opt.batch_tokens, "seed": opt.seed}  # fmt: skip
    configs = {
        "sft_feedback": {"alpha": 1.0},
        "sft_teacher_answers": {"strategy": "sequence", "alpha": 1.0},
        "logit_kd": {"alpha": 0.5},
        "kd_dpo": {"alpha": 0.5, "preference": "dpo", "preference_steps": opt.steps},
        "kd_kto": {"alpha": 0.5, "preference": "kto", "preference_steps": opt.steps},
    }
    results: dict[str, dict[str, Any]] = {}
    rows = []
    for name in (v for v in VARIANTS if v in wanted):
        if name == "teacher":
            results[name] = measure(teacher, None, held, opt.new_tokens)
        elif name == "base":
            results[name] = measure(student, None, held, opt.new_tokens)
        else:
            cfg = DistillConfig(**common, **configs[name])
            res = distill(snap, teacher=teacher, student=student, output_dir=tmp / name, config=cfg)
            results[name] = measure(student, res.adapter_dir, held, opt.new_tokens)
            results[name]["strategy"] = res.strategy
        before = results[AFTER[name]] if name in AFTER else None
        rows.append(summary(name, results[name], results.get("base"), before))
        emit(figure="quality", pair=opt.pair, strategy=results[name].get("strategy"), **rows[-1])
    print("\n| variant | perplexity | ROUGE-L | exact match | ROUGE-L − base [95% CI] "
          "| ROUGE-L − logit_kd [95% CI] |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        em = f"{r['exact_match']:.2f} (n={r['checkable']})" if r["exact_match"] is not None else "—"
        vs_base, vs_kd = interval(r.get("rougeL_vs_base")), interval(r.get("rougeL_vs_logit_kd"))
        print(f"| {r['variant']} | {r['perplexity']:.2f} | {r['rougeL']:.3f} | {em} | "
              f"{vs_base} | {vs_kd} |")  # fmt: skip
    return 0


def cycles(opt: argparse.Namespace) -> int:
    """The multi-cycle curve (bench/_cycles.py): table, JSON lines and a PNG."""
    from _cycles import CyclePlan, plot_curve, print_table, run_cycles

    plan = CyclePlan(cycles=opt.cycles, student=opt.student, teacher=PAIRS["smollm2"][0],
                     steps=opt.steps, phones=opt.phones, interactions=opt.interactions)  # fmt: skip
    emit(figure="context", **vars(plan))
    out = Path(tempfile.mkdtemp(prefix="bench-cycles-"))
    rows = run_cycles(plan, out)
    print_table(rows)
    print(f"\nplot: {plot_curve(rows, out / 'quality-cycles.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
