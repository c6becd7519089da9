"""Seeded paired bootstrap confidence intervals for candidate-minus-reference differences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tasks.evaluate.text_metrics import bleu_from_stats


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    if n == 0:
        raise ValueError("no paired examples to bootstrap")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(deltas, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_bootstrap(
    candidate: Sequence[float],
    reference: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Mean of per-example (candidate - reference) with a percentile bootstrap CI.

    Pairs where either side is NaN (e.g. an example with no scored tokens) are dropped.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} != {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    idx = _resample_indices(diff.size, n_resamples, seed)
    lo, hi = _interval(diff[idx].mean(axis=1), confidence)
    return {"mean_delta": float(diff.mean()), "ci_low": lo, "ci_high": hi, "n": float(diff.size)}


def paired_bootstrap_bleu(
    candidate_stats: np.ndarray,
    reference_stats: np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Corpus-BLEU difference with a paired bootstrap CI over resampled examples (Koehn 2004)."""
    a = np.asarray(candidate_stats)
    b = np.asarray(reference_stats)
    if a.shape != b.shape:
        raise ValueError(f"BLEU statistics differ in shape: {a.shape} != {b.shape}")
    idx = _resample_indices(a.shape[0], n_resamples, seed)
    deltas = np.array([bleu_from_stats(a[i].sum(0)) - bleu_from_stats(b[i].sum(0)) for i in idx])
    lo, hi = _interval(deltas, confidence)
    delta = bleu_from_stats(a.sum(0)) - bleu_from_stats(b.sum(0))
    return {"mean_delta": float(delta), "ci_low": lo, "ci_high": hi, "n": float(a.shape[0])}
