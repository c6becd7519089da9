"""bench/distill.py (f): generation one prompt at a time, in padded batches, continuously."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import torch

from tasks.models.decoding import Decoding, greedy_answers


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

    Padded batches run until their longest answer ends. Continuous batching keeps `n` answers
    in flight and gives a finished answer's slot to the next prompt: the project's own loop
    (tasks/models/decoding.py, what teacher answers, the yardstick and evaluation use) and
    transformers' `generate_batch` as a second baseline. The equal-length step ratio (every
    answer runs 32 steps) is what batching can gain per step on this hardware.
    """
    # Random-weight presets: the last id as EOS (rarely drawn); real EOS otherwise.
    ends = {vocab - 1 if preset == "llama-1b" else tok.eos_token_id}
    gen_tok = _GenTok(pad, next(iter(ends)))

    def ours(batch: int, how: Decoding, chosen: list[list[int]]) -> list[list[int]]:
        answers = greedy_answers(
            teacher, chosen, max_new_tokens=new_tokens, end_ids=ends, pad_id=pad,
            batch_size=batch, decoding=how, desc=f"(f) {how} x{batch}",
        )  # fmt: skip
        return [a.ids for a in answers]

    for warm in ([prompts[0]], prompts[:n]):  # kernels and allocations for both shapes
        greedy_answers(teacher, warm, max_new_tokens=4, end_ids=ends, pad_id=pad, batch_size=n)
    step_ratio = equal_length_ratio(teacher, prompts, n, device)
    runs = {
        "unbatched": lambda: [ours(1, "padded", [p])[0] for p in prompts],
        "padded": lambda: ours(n, "padded", prompts),
        "continuous": lambda: ours(n, "continuous", prompts),
        "transformers_continuous": lambda: continuous(teacher, gen_tok, prompts, n, new_tokens),
    }
    rates, outputs = {}, {}
    for label, run in runs.items():
        sync(device)
        t = time.perf_counter()
        outputs[label] = run()
        sync(device)
        rates[label] = sum(len(a) for a in outputs[label]) / (time.perf_counter() - t)
    for label in ("padded", "continuous", "transformers_continuous"):
        same = sum(a == b for a, b in zip(outputs[label], outputs["unbatched"], strict=True))
        emit(
            figure="f_batched_generation_speedup",
            how=label,
            value=rates[label] / rates["unbatched"],
            goal=">= 10" if label == "continuous" else "baseline",
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
    if teacher.dtype != torch.float32 and outputs["continuous"] != outputs["unbatched"]:
        fp32_check(teacher, prompts[: 2 * n], n, new_tokens, ends, pad)


def fp32_check(
    teacher: Any, prompts: list[list[int]], n: int, new: int, ends: set[int], pad: int
) -> None:
    """Are bf16/fp16 differences ties? Continuous vs unbatched answers again, in fp32."""
    model = copy.deepcopy(teacher).float()
    kwargs: dict[str, Any] = {"max_new_tokens": new, "end_ids": ends, "pad_id": pad}
    alone = [greedy_answers(model, [p], batch_size=1, **kwargs)[0].ids for p in prompts]
    together = [a.ids for a in greedy_answers(model, prompts, batch_size=n, **kwargs)]
    same = sum(a == b for a, b in zip(together, alone, strict=True))
    emit(
        figure="f_identical_answers_fp32",
        value=f"{same}/{len(prompts)}",
        why=f"in {teacher.dtype} a different batch shape sums in another order, and a near "
        "tie between two tokens can flip; in fp32 they should not",
    )


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
    """The two ids transformers' generate_batch needs (random-weight presets have no tokenizer)."""

    def __init__(self, pad: int, eos: int | None) -> None:
        self.pad_token_id, self.eos_token_id = pad, eos
