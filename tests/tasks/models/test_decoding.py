"""Continuous batching answers exactly as one prompt at a time does, scores and ends included."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import MistralConfig, MistralForCausalLM

from tasks.distill.data import prompt_ids
from tasks.models.decoding import Answer, _plain_cache, decoding_setting, greedy_answers
from tasks.models.load import load_model_and_tokenizer
from tests.tasks.distill.snapshots import seed_records


@pytest.fixture(scope="module")
def teacher() -> tuple[Any, list[list[int]]]:
    """The tiny llama teacher (fp32) and 11 chat prompts of different lengths."""
    model, tok = load_model_and_tokenizer("tiny-llama-teacher", device="cpu", quantize_4bit=False)
    prompts = [prompt_ids(tok, m) for m in seed_records(11)]
    assert len({len(p) for p in prompts}) > 3  # refills really left-pad
    return model, prompts


def one_at_a_time(
    model: Any, prompts: list[list[int]], ends: set[int], budget: int
) -> list[Answer]:
    """The reference: transformers' generate on each prompt alone."""
    return [
        greedy_answers(
            model, [p], max_new_tokens=budget, end_ids=ends, pad_id=0, batch_size=1,
            scores=True, decoding="padded",
        )[0]
        for p in prompts
    ]  # fmt: skip


def uneven_ends(model: Any, prompts: list[list[int]], budget: int) -> set[int]:
    """End tokens that stop the answers at different steps (random weights rarely say EOS)."""
    free = one_at_a_time(model, prompts, set(), budget)
    return {a.ids[3 + i % (budget - 4)] for i, a in enumerate(free[:4])}


def test_continuous_batching_answers_as_one_prompt_at_a_time(teacher: Any) -> None:
    model, prompts = teacher
    assert _plain_cache(model)  # the continuous path, not the fallback
    ends = uneven_ends(model, prompts, 20)
    alone = one_at_a_time(model, prompts, ends, 20)
    lengths = [len(a.ids) for a in alone]
    assert len(set(lengths)) > 2 and any(a.ended for a in alone)  # slots free at different steps
    together = greedy_answers(
        model, prompts, max_new_tokens=20, end_ids=ends, pad_id=0, batch_size=4, scores=True,
        decoding="continuous",
    )  # fmt: skip
    assert [a.ids for a in together] == [a.ids for a in alone]
    assert [a.ended for a in together] == [a.ended for a in alone]
    for mine, ref in zip(together, alone, strict=True):
        assert len(mine.entropy) == len(ref.entropy) == len(ref.ids) + ref.ended
        assert mine.entropy == pytest.approx(ref.entropy, abs=1e-4)
        assert mine.confidence == pytest.approx(ref.confidence, abs=1e-5)


def test_no_answer_exceeds_its_budget_and_order_is_kept(teacher: Any) -> None:
    model, prompts = teacher
    reversed_prompts = prompts[::-1]
    answers = greedy_answers(
        model, reversed_prompts, max_new_tokens=5, end_ids=set(), pad_id=0, batch_size=3
    )
    assert all(len(a.ids) == 5 and not a.ended and not a.entropy for a in answers)
    alone = one_at_a_time(model, reversed_prompts, set(), 5)
    assert [a.ids for a in answers] == [a.ids for a in alone]


def test_a_sliding_window_model_falls_back_to_padded_batches() -> None:
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=8,
    )  # fmt: skip
    model = MistralForCausalLM(config).eval()
    assert not _plain_cache(model)
    prompts = [[5, 6, 7], [9, 10, 11, 12, 13]]
    answers = greedy_answers(model, prompts, max_new_tokens=6, end_ids={1}, pad_id=0, batch_size=2)
    assert [a.ids for a in answers] == [a.ids for a in one_at_a_time(model, prompts, {1}, 6)]


def test_the_setting_chooses_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decoding_setting() == "continuous"
    monkeypatch.setenv("DISTILLERY_DECODING", "padded")
    assert decoding_setting() == "padded"
    monkeypatch.setenv("DISTILLERY_DECODING", "vllm")
    with pytest.raises(ValueError, match="continuous"):
        decoding_setting()


def test_a_zero_budget_is_refused(teacher: Any) -> None:
    model, prompts = teacher
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        greedy_answers(model, prompts, max_new_tokens=0, end_ids=set(), pad_id=0, batch_size=2)
