"""ECE, entropy spikes and the uncertainty summary on constructed distributions."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluate.bootstrap import paired_bootstrap, paired_bootstrap_bleu
from tasks.evaluate.text_metrics import bleu_sentence_stats, corpus_bleu
from tasks.evaluate.uncertainty import (
    entropy_spikes,
    expected_calibration_error,
    uncertainty_summary,
)


def test_ece_of_a_perfectly_calibrated_set_is_zero() -> None:
    # 10 tokens at confidence 0.8 of which 8 are right; 10 at 0.3 of which 3 are right.
    conf = [0.8] * 10 + [0.3] * 10
    correct = [1] * 8 + [0] * 2 + [1] * 3 + [0] * 7
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx(0.0)


def test_ece_of_an_overconfident_set() -> None:
    # Bin (0.9, 1.0]: 4 tokens at 0.95, 2 right -> |0.5 - 0.95| = 0.45, weight 4/6.
    # Bin (0.5, 0.6]: 2 tokens at 0.55, both right -> |1 - 0.55| = 0.45, weight 2/6.
    conf = [0.95] * 4 + [0.55] * 2
    correct = [1, 1, 0, 0, 1, 1]
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx(0.45)
    # With one bin, ECE is |overall accuracy - mean confidence|.
    assert expected_calibration_error(conf, correct, n_bins=1) == pytest.approx(
        abs(4 / 6 - np.mean(conf))
    )


def test_ece_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        expected_calibration_error([0.5], [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [1])


def test_entropy_spikes_sigma_and_threshold() -> None:
    ent = np.array([1.0] * 20 + [5.0])
    assert entropy_spikes(ent, sigma=2.0) == 1
    assert entropy_spikes(ent, threshold=0.5) == 21
    assert entropy_spikes(np.ones(5)) == 0


def test_uncertainty_summary_fields() -> None:
    s = uncertainty_summary([0.1, 2.0, 0.5, 0.2], [0.9, 0.2, 0.6, 0.25], [1, 0, 1, 0])
    assert s["mean_entropy"] == pytest.approx(0.7)
    assert s["low_conf_share"] == pytest.approx(0.5)
    assert s["accuracy"] == pytest.approx(0.5)
    assert "ece" in s and 0.0 <= s["ece"] <= 1.0
    assert "ece" not in uncertainty_summary([0.1], [0.9])


def test_paired_bootstrap_contains_true_mean_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=200)
    cand = ref + 0.5 + rng.normal(scale=0.1, size=200)
    ci = paired_bootstrap(cand, ref, n_resamples=500, seed=3)
    assert ci["ci_low"] < ci["mean_delta"] < ci["ci_high"]
    assert ci["ci_low"] > 0.4 and ci["ci_high"] < 0.6
    assert paired_bootstrap(cand, ref, n_resamples=500, seed=3) == ci
    tie = paired_bootstrap(ref, ref)
    assert tie["ci_low"] == tie["ci_high"] == tie["mean_delta"] == 0.0


def test_paired_bootstrap_drops_nan_pairs() -> None:
    ci = paired_bootstrap([1.0, float("nan"), 3.0], [0.0, 1.0, 1.0], n_resamples=50)
    assert ci["n"] == 2 and ci["mean_delta"] == pytest.approx(1.5)


def test_bleu_bootstrap_delta_is_corpus_difference() -> None:
    refs = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"]
    good = refs
    bad = ["the cat sat", "a dog ran", "birds sing"]
    ci = paired_bootstrap_bleu(
        bleu_sentence_stats(good, refs), bleu_sentence_stats(bad, refs), n_resamples=200
    )
    assert ci["mean_delta"] == pytest.approx(corpus_bleu(good, refs) - corpus_bleu(bad, refs))
    assert ci["ci_low"] > 0
