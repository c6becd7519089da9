"""Answer-level scores of one model on held-out tasks, shared by the quality and heal benches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tasks.evaluate.bootstrap import paired_bootstrap
from tasks.evaluate.model_metrics import generate_answers, score_targets
from tasks.evaluate.text_metrics import rouge_per_example
from tasks.models.load import load_model_and_tokenizer
from tasks.sampledata.generate import answer_match


def score_loaded(model: Any, tok: Any, held: list[dict[str, Any]], new_tokens: int) -> dict:
    """Per-example NLL/token, ROUGE-L, answer match (checkable tasks) and the answers."""
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in held]
    scores = score_targets(
        model, tok, [(p, r["answer"]) for p, r in zip(prompts, held, strict=True)]
    )
    nll = [s.nll_sum / s.n_tokens if s.n_tokens else math.nan for s in scores]
    answers, _, _ = generate_answers(model, tok, prompts, max_new_tokens=new_tokens)
    rouge = rouge_per_example(answers, [r["answer"] for r in held])["rougeL"]
    exact = [  # the evaluation's answer match: the answer as whole words in the first line
        float(answer_match(a, r["answer"])) if r["checkable"] else math.nan
        for a, r in zip(answers, held, strict=True)
    ]
    return {"nll": nll, "rougeL": rouge, "exact": exact, "answers": answers}


def measure(
    preset: str, adapter: Path | None, held: list[dict[str, Any]], new_tokens: int
) -> dict[str, Any]:
    """`score_loaded` on a preset (with an optional LoRA adapter), on the CPU."""
    model, tok = load_model_and_tokenizer(preset, adapter_dir=adapter, device="cpu")
    return score_loaded(model, tok, held, new_tokens)


def means(got: dict[str, Any]) -> dict[str, Any]:
    """Perplexity (from the mean NLL per token), mean ROUGE-L and answer match."""
    exact = np.asarray(got["exact"], dtype=float)
    return {
        "perplexity": math.exp(float(np.nanmean(got["nll"]))),
        "rougeL": float(np.mean(got["rougeL"])),
        "answer_match": float(np.nanmean(exact)) if not np.all(np.isnan(exact)) else None,
        "checkable": int(np.sum(~np.isnan(exact))),
    }


def versus(got: dict[str, Any], ref: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Paired bootstrap differences (got − ref) of ROUGE-L, answer match and NLL."""
    return {
        "rougeL": paired_bootstrap(got["rougeL"], ref["rougeL"]),
        "answer_match": paired_bootstrap(got["exact"], ref["exact"]),
        "nll": paired_bootstrap(got["nll"], ref["nll"]),
    }


def interval(d: dict[str, float] | None) -> str:
    """A paired bootstrap difference as "+mean [low, high]", or a dash."""
    return f"{d['mean_delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "—"
