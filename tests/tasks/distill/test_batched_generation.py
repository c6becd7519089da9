"""Batched greedy generation (left padding) answers exactly as one prompt at a time does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.distill.data import prompt_ids
from tasks.distill.signals import generate_batch, teacher_answers
from tasks.distill.teacher_cache import TeacherCache
from tasks.models.load import load_model_and_tokenizer
from tests.tasks.distill.snapshots import seed_records


@pytest.mark.parametrize("name", ["tiny-llama-teacher", "tiny-phi3-student"])
def test_batched_greedy_answers_equal_unbatched_ones(name: str) -> None:
    model, tok = load_model_and_tokenizer(name, device="cpu", quantize_4bit=False)  # fp32
    prompts = [prompt_ids(tok, m) for m in seed_records(12)]
    assert len({len(p) for p in prompts}) > 3  # the batch is really left-padded
    batched = generate_batch(model, tok, prompts, 16)
    alone = [generate_batch(model, tok, [p], 16)[0] for p in prompts]
    assert batched == alone
    assert sum(len(a) for a in batched) > 12  # answers, not empty rows


def test_teacher_answers_do_not_depend_on_the_batch_size(tmp_path: Path) -> None:
    model, tok = load_model_and_tokenizer("tiny-llama-teacher", device="cpu", quantize_4bit=False)
    records = seed_records(10)
    texts = {}
    for size in (1, 16):
        cache = TeacherCache.open(
            kind="generate",
            teacher_id="t",
            revision="0",
            tokenizer_hash="x",
            max_length=512,
            root=tmp_path / f"b{size}",
        )
        answered = teacher_answers(
            cache, records, lambda: model, tok, max_new_tokens=12, batch_size=size
        )
        texts[size] = [m[-1]["content"] for m in answered]
    assert texts[1] == texts[16]
    assert texts[1] != [m[-1]["content"] for m in records]
