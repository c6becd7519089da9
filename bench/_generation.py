"""bench/distill.py (f): generation one prompt at a time, in padded batches, continuously."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from tasks.distill.signals import generate_batch


def emit(**row: Any) -> None:
    """One JSON line, flushed."""
    print(json.dumps(row), flush=True)


def sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock timings are real."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generation(
    teacher: Any,
    tok: Any,
    pad: int,
    vocab: int,
    preset: str,
    prompts: list[list[int]],
    n: int,
    device: str,
    new_tokens: int,
    kind: str,
) -> None:
    """(f) `prompts` (4·n) one at a time, in padded batches of `n`, and continuously batched.

    Padded batches are what `teacher_answers` sends to `generate`: a batch runs until its
    longest answer ends. Continuous batching (transformers' `generate_batch`) keeps `n`
    requests in flight and starts the next prompt as soon as one answer ends. The same
    answers of equal length at batch 1 and batch `n` show what batching gains per step here,
    with no answer ending early.
    """
    # Random-weight presets: the last id as EOS (rarely drawn); real EOS otherwise.
    gen_tok = _GenTok(pad, vocab - 1 if preset == "llama-1b" else tok.eos_token_id)
    for warm in ([prompts[0]], prompts[:n]):  # kernels and allocations for both shapes
        generate_batch(teacher, gen_tok, warm, 4)
    step_ratio = equal_length_ratio(teacher, prompts, n, device)
    by_length = sorted(prompts, key=len)  # as teacher_answers groups them
    runs = {
        "unbatched": lambda: [generate_batch(teacher, gen_tok, [p], new_tokens)[0]
                              for p in prompts],
        "padded": lambda: padded_in_order(teacher, gen_tok, by_length, prompts, n, new_tokens),
        "continuous": lambda: continuous(teacher, gen_tok, prompts, n, new_tokens),
    }  # fmt: skip
    rates, outputs = {}, {}
    for label, run in runs.items():
        sync(device)
        t = time.perf_counter()
        outputs[label] = run()
        sync(device)
        rates[label] = sum(len(a) for a in outputs[label]) / (time.perf_counter() - t)
    for label in ("padded", "continuous"):
        same = sum(a == b for a, b in zip(outputs[label], outputs["unbatched"], strict=True))
        emit(
            figure="f_batched_generation_speedup",
            how=label,
            value=rates[label] / rates["unbatched"],
            goal=">= 10",
            tokens_per_s=rates[label],
            unbatched_tokens_per_s=rates["unbatched"],
            batch=n,
            requests=len(prompts),
            max_new_tokens=new_tokens,
            prompts=kind,
            mean_answer_tokens=sum(map(len, outputs["unbatched"])) / len(prompts),
            identical_answers=f"{same}/{len(prompts)}",
            equal_length_step_ratio=step_ratio,
            threads=torch.get_num_threads(),
        )


def padded_in_order(
    model: Any, tok: Any, by_length: list[list[int]], prompts: list[list[int]], n: int, new: int
) -> list[list[int]]:
    """Answers from padded batches of `n` prompts of similar length, in `prompts` order."""
    answers: dict[int, list[int]] = {}
    for i in range(0, len(by_length), n):
        chunk = by_length[i : i + n]
        for p, a in zip(chunk, generate_batch(model, tok, chunk, new), strict=True):
            answers[id(p)] = a
    return [answers[id(p)] for p in prompts]


def continuous(model: Any, tok: Any, prompts: list[list[int]], n: int, new: int) -> list[list[int]]:
    """Greedy answers by transformers' continuous batching, `n` requests in flight."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    config = GenerationConfig(
        max_new_tokens=new, do_sample=False, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    batching = ContinuousBatchingConfig(max_requests_per_batch=n, allow_block_sharing=False)
    out = model.generate_batch(prompts, config, continuous_batching_config=batching)
    answers = []
    for i in range(len(prompts)):
        ids = list(out[f"req_{i}"].generated_tokens)
        answers.append(ids[: ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids)
    return answers


def equal_length_ratio(model: Any, prompts: list[list[int]], n: int, device: str) -> float:
    """Tokens/s at batch `n` over batch 1 when every answer runs the same 32 steps."""
    from transformers import GenerationConfig

    rates = []
    length = min(16, *(len(p) for p in prompts[:n]))
    for batch in (1, n):
        ids = torch.tensor([p[:length] for p in prompts[:batch]], device=device)
        config = GenerationConfig(
            max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0
        )
        sync(device)
        t = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        sync(device)
        rates.append(batch * 32 / (time.perf_counter() - t))
    return rates[1] / rates[0]


class _GenTok:
    """The two ids generate_batch needs (random-weight presets have no real tokenizer)."""

    def __init__(self, pad: int, eos: int | None) -> None:
        self.pad_token_id, self.eos_token_id = pad, eos
