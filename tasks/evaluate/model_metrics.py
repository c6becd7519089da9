"""Metrics that need the model: assistant-only perplexity, token uncertainty, greedy answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tasks.models.decoding import greedy_answers
from tasks.progress import progress

Messages = list[dict[str, str]]


@dataclass
class TargetScores:
    """Teacher-forced scores of one reference answer under the model."""

    nll_sum: float
    n_tokens: int
    entropies: list[float] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # max probability per position
    correct: list[bool] = field(default_factory=list)  # argmax == reference token


def _ids(tokenizer: Any, messages: Messages, *, generation_prompt: bool) -> list[int]:
    # Render to text first: the template already holds any BOS, so add no special tokens.
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_example(
    tokenizer: Any, prompt: Messages, answer: str, max_length: int
) -> tuple[list[int], int]:
    """Token ids of prompt + answer through the chat template, and where the answer starts.

    The answer is what the template adds after the generation prompt, up to and including
    the end-of-turn token (a trailing newline the template writes after it is not scored).
    """
    prompt_ids = _ids(tokenizer, prompt, generation_prompt=True)
    full = _ids(
        tokenizer, [*prompt, {"role": "assistant", "content": answer}], generation_prompt=False
    )
    start = 0
    # Templates render the prompt as a prefix of the full chat; tolerate merges at the seam.
    while start < min(len(prompt_ids), len(full)) and prompt_ids[start] == full[start]:
        start += 1
    eos = tokenizer.eos_token_id
    if eos is not None and eos in full[start:]:
        full = full[: len(full) - full[::-1].index(eos)]
    return full[:max_length], start


@torch.no_grad()
def score_targets(
    model: Any,
    tokenizer: Any,
    examples: list[tuple[Messages, str]],
    *,
    batch_size: int = 8,
    max_length: int = 1024,
    desc: str = "scoring",
) -> list[TargetScores]:
    """Per-example NLL over answer tokens only, with entropy/confidence/accuracy per token."""
    encoded = [encode_example(tokenizer, p, a, max_length) for p, a in examples]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # less padding
    results: list[TargetScores | None] = [None] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    for b in progress(range(0, len(order), batch_size), desc=desc, unit="batch"):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        target = torch.zeros((len(idx), width), dtype=torch.bool)
        for row, i in enumerate(idx):
            seq, start = encoded[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            attn[row, : len(seq)] = 1
            target[row, start : len(seq)] = True
        first = max(1, min(encoded[i][1] for i in idx))
        # Right padding keeps positions exact; logits are only needed from the first answer on.
        keep = width - first + 1
        logits = model(
            input_ids=ids.to(device), attention_mask=attn.to(device), logits_to_keep=keep
        ).logits.float()
        logits = logits[:, -keep:-1] if keep > 1 else logits[:, :0]
        labels = ids[:, first:].to(device)
        mask = target[:, first:].to(device)
        logp = torch.log_softmax(logits, dim=-1)
        nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        conf, argmax = logp.max(-1)
        for row, i in enumerate(idx):
            m = mask[row]
            results[i] = TargetScores(
                nll_sum=float(nll[row][m].sum()),
                n_tokens=int(m.sum()),
                entropies=entropy[row][m].tolist(),
                confidences=conf[row][m].exp().tolist(),
                correct=(argmax[row][m] == labels[row][m]).tolist(),
            )
    return [r for r in results if r is not None]


@torch.no_grad()
def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: list[Messages],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    max_length: int = 1024,
    desc: str = "generating",
) -> tuple[list[str], list[list[float]], list[list[float]]]:
    """Greedy answers (tasks/models/decoding.py) with per-token entropy and top probability."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ends = {tokenizer.eos_token_id} - {None}
    model_eos = getattr(model.generation_config, "eos_token_id", None)
    ends |= set(model_eos if isinstance(model_eos, list) else [model_eos]) - {None}
    budget = max(1, max_length - max_new_tokens)
    encoded = [_ids(tokenizer, p, generation_prompt=True)[-budget:] for p in prompts]
    answers = greedy_answers(
        model,
        encoded,
        max_new_tokens=max_new_tokens,
        end_ids=ends,
        pad_id=pad,
        batch_size=batch_size,
        scores=True,
        desc=desc,
    )
    texts = [tokenizer.decode(a.ids, skip_special_tokens=True).strip() for a in answers]
    return texts, [a.entropy for a in answers], [a.confidence for a in answers]
