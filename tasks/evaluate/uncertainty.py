"""Token uncertainty from a model's own distribution: entropy, low confidence, calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    n_bins: int = 15,
) -> float:
    """ECE over equal-width confidence bins: sum_b |B|/N * |accuracy(B) - confidence(B)|."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.shape != hit.shape:
        raise ValueError(f"confidences {conf.shape} and correct {hit.shape} differ in shape")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if conf.size == 0:
        return float("nan")
    if conf.min() < 0.0 or conf.max() > 1.0:
        raise ValueError("confidences must lie in [0, 1]")
    # Bin b holds (b/n, (b+1)/n]; a confidence of exactly 0 goes to the first bin.
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def entropy_spikes(
    entropies: Sequence[float] | np.ndarray, sigma: float = 2.0, threshold: float | None = None
) -> int:
    """Tokens whose entropy exceeds `threshold`, or mean + sigma * std when none is given."""
    ent = np.asarray(entropies, dtype=np.float64)
    if ent.size == 0:
        return 0
    limit = threshold if threshold is not None else ent.mean() + sigma * ent.std()
    return int((ent > limit).sum())


def uncertainty_summary(
    entropies: Sequence[float] | np.ndarray,
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray | None = None,
    *,
    low_confidence: float = 0.3,
    n_bins: int = 15,
    spike_sigma: float = 2.0,
    spike_threshold: float | None = None,
) -> dict[str, float]:
    """Mean entropy (nats), share of tokens with top probability < `low_confidence`, spikes, ECE.

    ECE needs `correct` (argmax == target), so it is only reported for teacher-forced tokens.
    """
    ent = np.asarray(entropies, dtype=np.float64)
    conf = np.asarray(confidences, dtype=np.float64)
    if ent.shape != conf.shape:
        raise ValueError(f"entropies {ent.shape} and confidences {conf.shape} differ in shape")
    summary = {
        "tokens": float(ent.size),
        "mean_entropy": float(ent.mean()) if ent.size else float("nan"),
        "low_conf_share": float((conf < low_confidence).mean()) if conf.size else float("nan"),
        "entropy_spikes": float(entropy_spikes(ent, spike_sigma, spike_threshold)),
    }
    if correct is not None:
        summary["ece"] = expected_calibration_error(conf, correct, n_bins)
        summary["accuracy"] = float(np.mean(correct)) if conf.size else float("nan")
    return summary
