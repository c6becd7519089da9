"""A/B: paired per-example deltas of a candidate against a reference, with bootstrap CIs."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.evaluate.bootstrap import paired_bootstrap, paired_bootstrap_bleu
from tasks.evaluate.run import load_results


def compare_results(
    candidate: dict[str, Any],
    reference: dict[str, Any],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, dict[str, float]]]:
    """Set -> metric -> {mean_delta, ci_low, ci_high, n} (candidate - reference).

    Metrics: nll, rougeL and bleu on every set; answer_match and exact_match (shares of
    checkable tasks answered right) where a set has checkable tasks. Examples are paired by
    id; both models must have seen the same prompts.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, cand_set in candidate["sets"].items():
        if name not in reference["sets"]:
            raise ValueError(f"reference has no results on eval set {name!r}")
        ref_by_id = {e["id"]: e for e in reference["sets"][name]["examples"]}
        pairs = [(e, ref_by_id[e["id"]]) for e in cand_set["examples"] if e["id"] in ref_by_id]
        if len(pairs) != len(cand_set["examples"]):
            raise ValueError(f"eval set {name!r}: candidate and reference saw different prompts")
        out[name] = {
            metric: paired_bootstrap(
                [c[metric] for c, _ in pairs],
                [r[metric] for _, r in pairs],
                n_resamples=n_resamples,
                seed=seed,
                confidence=confidence,
            )
            for metric in ("nll", "rougeL")
        }
        for metric, field in (("answer_match", "answer"), ("exact_match", "exact")):
            judged = [(c.get(field), r.get(field)) for c, r in pairs]
            judged = [(float(c), float(r)) for c, r in judged if c is not None and r is not None]
            if judged:  # only checkable tasks are right or wrong
                out[name][metric] = paired_bootstrap(
                    [c for c, _ in judged],
                    [r for _, r in judged],
                    n_resamples=n_resamples,
                    seed=seed,
                    confidence=confidence,
                )
        out[name]["bleu"] = paired_bootstrap_bleu(
            np.array([c["bleu_stats"] for c, _ in pairs]),
            np.array([r["bleu_stats"] for _, r in pairs]),
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
    return out


def compare_files(
    candidate_path: str, reference_path: str, **kwargs: Any
) -> dict[str, dict[str, dict[str, float]]]:
    """`compare_results` on two results files (what flows pass around: paths)."""
    return compare_results(load_results(candidate_path), load_results(reference_path), **kwargs)
