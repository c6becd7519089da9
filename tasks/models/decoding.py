"""Greedy answers for many prompts: one path for teacher answers, the yardstick and evaluation.

Continuous batching (the default, `DISTILLERY_DECODING=continuous`): `batch_size` answers are
in flight, and the slots of finished answers take the next prompts at once, so a batch no
longer runs until its longest answer ends. Padded batches (`padded`, and the fallback) are
transformers' `generate` on left-padded groups of prompts of similar length.

Why our own loop: on this project's own prompts the answers end far before the budget (mean
36 of 128 tokens for SmolLM2-135M), so padded batches spend most steps on finished rows, and
transformers' continuous batching (`generate_batch`, paged attention) measured no faster than
padded batches on CPU (`bench/distill.py --only f`). The loop below calls the model's own
forward with its own `DynamicCache`; it only adds rows to and drops rows from that cache.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import DynamicCache, GenerationConfig, LlamaForCausalLM
from transformers.cache_utils import DynamicLayer

from tasks.models.batching import pad_ids
from tasks.progress import bar

log = logging.getLogger(__name__)

Decoding = Literal["continuous", "padded"]

# transformers 5 renamed the forward's `past_key_values` to `cache` (the old name warns).
_CACHE_ARG = (
    "cache"
    if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters
    else "past_key_values"
)


@dataclass
class Answer:
    """One greedy answer: its tokens (end token excluded) and, if asked, per-step scores."""

    ids: list[int] = field(default_factory=list)
    ended: bool = False  # stopped at an end token (False: the token budget ran out)
    entropy: list[float] = field(default_factory=list)  # nats, one per step, end step included
    confidence: list[float] = field(default_factory=list)  # probability of the chosen token


def decoding_setting() -> Decoding:
    """DISTILLERY_DECODING: continuous (default) or padded."""
    from tasks.settings import PipelineSettings

    return PipelineSettings.read().decoding


def greedy_answers(
    model: Any,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    end_ids: Iterable[int],
    pad_id: int,
    batch_size: int,
    scores: bool = False,
    desc: str = "answers",
    decoding: Decoding | None = None,
) -> list[Answer]:
    """Greedy answers to `prompts` (token ids), in their order, `batch_size` at a time."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    ends = frozenset(end_ids)
    mode = decoding or decoding_setting()
    if mode == "continuous" and not _plain_cache(model):
        log.info("continuous decoding needs a full-attention cache; padded batches instead")
        mode = "padded"
    run = _continuous if mode == "continuous" else _padded
    with bar(desc=desc, total=len(prompts), unit="answer") as shown:
        return run(model, prompts, max_new_tokens, ends, pad_id, max(1, batch_size), scores, shown)


def _plain_cache(model: Any) -> bool:
    """True when every layer caches all positions (no sliding window, no linear attention)."""
    cache = DynamicCache(config=model.config)
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


def _step_scores(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy token, entropy and its probability for each row of [B, V] logits."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    top_lp, top = logp.max(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return top, entropy, top_lp.exp()


class _Slots:
    """The rows in flight: their request, cache, attention mask and next position."""

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model, self.pad_id = model, pad_id
        self.device = next(model.parameters()).device
        self.requests: list[int] = []
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long, device=self.device)
        self.next_pos = torch.zeros(0, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def prefill(self, requests: list[int], prompts: list[list[int]]) -> torch.Tensor:
        """Run the new prompts (left-padded together) and add their rows; their last logits."""
        ids, mask = pad_ids([prompts[r] for r in requests], self.pad_id, side="left")
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            **{_CACHE_ARG: cache},
            use_cache=True,
            logits_to_keep=1,
        )
        self._merge(requests, cache, mask)  # filled in place
        return out.logits[:, -1]

    def _merge(self, requests: list[int], cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append rows to the batch, left-padding whichever cache is shorter (masked out)."""
        if self.cache is None or not self.requests:
            self.cache, self.mask = cache, mask
        else:
            width = max(self.mask.shape[1], mask.shape[1])
            self.mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(mask, width, 1)])
            for mine, new in zip(self.cache.layers, cache.layers, strict=True):
                assert isinstance(mine, DynamicLayer) and isinstance(new, DynamicLayer)
                assert mine.keys is not None and new.keys is not None
                assert mine.values is not None and new.values is not None
                mine.keys = _stack(mine.keys, new.keys, width)
                mine.values = _stack(mine.values, new.values, width)
        self.requests += requests
        self.next_pos = torch.cat([self.next_pos, mask.sum(-1)])

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """One step for every row: feed each its last token; the logits of the next."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.next_pos[:, None],
            **{_CACHE_ARG: self.cache},
            use_cache=True,
        )
        self.next_pos = self.next_pos + 1
        return out.logits[:, -1]

    def keep(self, rows: list[int]) -> None:
        """Drop every other row, and the leading columns no remaining row attends to."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.requests = [self.requests[i] for i in rows]
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        if not rows:
            self.cache = None
            return
        assert self.cache is not None
        used = self.mask.any(0).nonzero()
        start = int(used[0]) if len(used) else 0
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            assert isinstance(layer, DynamicLayer)
            assert layer.keys is not None and layer.values is not None
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]


def _stack(mine: torch.Tensor, new: torch.Tensor, width: int) -> torch.Tensor:
    """[B, H, T, D] cache tensors of two batches, left-padded to `width` positions, stacked."""
    return torch.cat([_left_pad(mine, width, 2), _left_pad(new, width, 2)])


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """`t` with zeros prepended along `dim` up to `width`."""
    short = width - t.shape[dim]
    if short == 0:
        return t
    shape = list(t.shape)
    shape[dim] = short
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _continuous(
    model: Any,
    prompts: list[list[int]],
    budget: int,
    ends: frozenset[int],
    pad_id: int,
    batch_size: int,
    scores: bool,
    shown: Any,
) -> list[Answer]:
    """Keep `batch_size` answers in flight; refill freed slots a quarter batch at a time."""
    answers = [Answer() for _ in prompts]
    # Shortest first: a refill's prompts are of similar length, so little of it is padding.
    waiting = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
    slots = _Slots(model, pad_id)
    tokens = torch.zeros(0, dtype=torch.long, device=slots.device)
    refill_at = max(1, batch_size // 4)  # fewer, larger prefills: each one pauses the batch
    while waiting or slots.requests:
        free = batch_size - len(slots.requests)
        if waiting and (free >= refill_at or not slots.requests):
            new = [waiting.popleft() for _ in range(min(free, len(waiting)))]
            logits = slots.prefill(new, prompts)
            rows = range(len(slots.requests) - len(new), len(slots.requests))
            tokens = torch.cat([tokens, tokens.new_zeros(len(new))])
        else:
            logits = slots.decode(tokens)
            rows = range(len(slots.requests))
        step = _step_scores(logits)
        tokens[rows.start : rows.stop] = step[0]
        done = _record(answers, slots.requests, rows, step, ends, budget, scores)
        if done:
            kept = [i for i in range(len(slots.requests)) if i not in done]
            slots.keep(kept)
            tokens = tokens[kept]
            shown.update(len(done))
    return answers


def _record(
    answers: list[Answer],
    requests: list[int],
    rows: range,
    step: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ends: frozenset[int],
    budget: int,
    scores: bool,
) -> set[int]:
    """Add one step's token to each row's answer; the rows that finished."""
    done = set()
    top, entropy, confidence = (t.tolist() for t in step)
    for row, token, h, p in zip(rows, top, entropy, confidence, strict=True):
        answer = answers[requests[row]]
        if scores:
            answer.entropy.append(h)
            answer.confidence.append(p)
        if token in ends:
            answer.ended = True
            done.add(row)
            continue
        answer.ids.append(token)
        if len(answer.ids) >= budget:
            done.add(row)
    return done


def _padded(
    model: Any,
    prompts: list[list[int]],
    budget: int,
    ends: frozenset[int],
    pad_id: int,
    batch_size: int,
    scores: bool,
    shown: Any,
) -> list[Answer]:
    """transformers' `generate` on left-padded batches of prompts of similar length."""
    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=budget,
        do_sample=False,
        num_beams=1,
        pad_token_id=pad_id,
        eos_token_id=sorted(ends) or None,
        output_logits=scores,
        return_dict_in_generate=True,
    )
    answers = [Answer() for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less left padding
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        ids, mask = pad_ids([prompts[i] for i in idx], pad_id, side="left")
        width = ids.shape[1]
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config
            )
        new = out.sequences[:, width:].tolist()
        if scores:
            _, entropy, confidence = _step_scores(torch.stack(out.logits, dim=1))
        for row, i in enumerate(idx):
            stop = next((k for k, t in enumerate(new[row]) if t in ends), None)
            answers[i].ended = stop is not None
            answers[i].ids = new[row][:stop] if stop is not None else new[row]
            length = len(answers[i].ids) + answers[i].ended  # the end step has scores too
            if scores:
                answers[i].entropy = entropy[row, :length].tolist()
                answers[i].confidence = confidence[row, :length].tolist()
        shown.update(len(idx))
    return answers
