"""Perplexity, token uncertainty and generation with a tiny model, against plain-loop references."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from tasks.evaluate.model_metrics import encode_example, generate_answers, score_targets
from tasks.evaluate.run import EvalConfig, evaluate_dataset
from tasks.evaluate.sets import load_eval_set
from tasks.evaluate.text_metrics import corpus_bleu

from .conftest import QA

EXAMPLES = [([{"role": "user", "content": q}], a) for q, a in QA[:5]]
LOOP_EXAMPLES = [EXAMPLES[i] for i in (0, 2, 4)]  # the per-token loop is slow: keep it short


def _reference_loop(model: Any, tokenizer: Any) -> tuple[list[float], list[int], list[float]]:
    """Per-example NLL sums, token counts and entropies: one unbatched forward per token."""
    sums, counts, entropies = [], [], []
    with torch.no_grad():
        for prompt, answer in LOOP_EXAMPLES:
            ids, start = encode_example(tokenizer, prompt, answer, 1024)
            total = 0.0
            for t in range(start, len(ids)):
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:t]])).logits[0, -1], -1)
                total -= logp[ids[t]].item()
                entropies.append(-(logp.exp() * logp).sum().item())
            sums.append(total)
            counts.append(len(ids) - start)
    return sums, counts, entropies


def test_answer_tokens_only_are_scored(tiny: tuple[Any, Any]) -> None:
    _, tok = tiny
    prompt, answer = EXAMPLES[0]
    ids, start = encode_example(tok, prompt, answer, 1024)
    # The answer is its own tokens plus the end-of-turn token; the prompt is masked.
    assert ids[start:] == tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert tok.decode(ids[:start]).endswith("<|im_start|>assistant\n")


def test_batched_perplexity_matches_per_token_loop(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    sums, counts, entropies = _reference_loop(model, tok)
    scores = score_targets(model, tok, LOOP_EXAMPLES, batch_size=2)  # padded, mixed lengths
    assert [s.n_tokens for s in scores] == counts
    for got, want in zip(scores, sums, strict=True):
        assert got.nll_sum == pytest.approx(want, rel=1e-4)
    assert [e for s in scores for e in s.entropies] == pytest.approx(entropies, rel=1e-4)
    # Token-weighted: exp(sum NLL / sum tokens), which differs from the mean per-example ppl.
    ppl = math.exp(sum(s.nll_sum for s in scores) / sum(counts))
    assert ppl == pytest.approx(math.exp(sum(sums) / sum(counts)), rel=1e-4)
    mean_ppl = sum(math.exp(s / n) for s, n in zip(sums, counts, strict=True)) / len(sums)
    assert abs(ppl - mean_ppl) > 1e-3 * ppl


def test_confidence_and_accuracy_are_the_models_own(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    (score,) = score_targets(model, tok, EXAMPLES[:1])
    ids, start = encode_example(tok, *EXAMPLES[0], 1024)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
    want_conf = probs[start - 1 : len(ids) - 1].max(-1).values.tolist()
    want_hit = (probs[start - 1 : len(ids) - 1].argmax(-1) == torch.tensor(ids[start:])).tolist()
    assert score.confidences == pytest.approx(want_conf, rel=1e-4)
    assert score.correct == want_hit


def test_truncation_leaves_no_answer_tokens(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    _, start = encode_example(tok, *EXAMPLES[0], 1024)
    (score,) = score_targets(model, tok, EXAMPLES[:1], max_length=start)
    assert score.n_tokens == 0 and score.nll_sum == 0.0


def test_generation_is_greedy_and_batch_independent(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    prompts = [p for p, _ in EXAMPLES]
    batched, ent, conf = generate_answers(model, tok, prompts, batch_size=5, max_new_tokens=6)
    # One prompt at a time (no padding, no reordering): left padding changes no greedy answer
    # and every answer comes back at its prompt's position.
    single = [generate_answers(model, tok, [p], max_new_tokens=6)[0][0] for p in prompts]
    assert batched == single
    assert all(1 <= len(e) <= 6 for e in ent)
    assert all(len(e) == len(c) for e, c in zip(ent, conf, strict=True))
    again, _, _ = generate_answers(model, tok, prompts, batch_size=5, max_new_tokens=6)
    assert again == batched


def test_evaluate_dataset_aggregates(tiny: tuple[Any, Any], snapshot_dir: Any) -> None:
    model, tok = tiny
    data = load_eval_set(snapshot_dir)
    out = evaluate_dataset(model, tok, data, EvalConfig(batch_size=4, max_new_tokens=5))
    m = out["metrics"]
    ex = out["examples"]
    assert m["examples"] == 6 == len(ex)
    n = sum(e["n_tokens"] for e in ex)
    assert m["tokens"] == n == len(out["token_entropies"])
    assert m["perplexity"] == pytest.approx(math.exp(sum(e["nll"] * e["n_tokens"] for e in ex) / n))
    hyps = [e["hypothesis"] for e in ex]
    assert m["bleu"] == pytest.approx(corpus_bleu(hyps, [e["reference"] for e in ex]))
    assert m["rougeL"] == pytest.approx(sum(e["rougeL"] for e in ex) / 6)
    for key in ("mean_entropy", "low_conf_share", "ece", "entropy_spikes", "gen_mean_entropy"):
        assert math.isfinite(m[key])
    # A random model over a vocabulary of hundreds is uncertain: entropy well above zero.
    assert m["mean_entropy"] > 1.0
