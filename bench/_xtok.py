"""Cross-tokenizer columns for the distillation bench, built from same-vocabulary KD data.

The bench's records are random token ids, not text, so there is nothing to align: every
target position is taken as aligned (real pairs align fewer, so this is the upper bound of
the loss's cost) and a seeded share of the vocabulary is marked as not shared. The shapes,
and so the cost, are those of a real pair's cross-tokenizer step.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from datasets import Dataset


def as_xtok(data: Dataset, vocab: int, share: float = 0.8, seed: int = 0) -> tuple[Dataset, Any]:
    """(`data` with t_pos and teacher ids remapped, KD settings' unshared mask and KL weight)."""
    gen = torch.Generator().manual_seed(seed)
    unshared = torch.rand(vocab, generator=gen) >= share
    remap = torch.arange(vocab)
    remap[unshared] = -1  # a teacher token whose student counterpart is missing

    def add(row: dict[str, Any]) -> dict[str, Any]:
        ids = torch.as_tensor(row["t_ids"]).long()
        return {"t_pos": list(range(ids.shape[0])), "t_ids": remap[ids].tolist()}

    plain = data.with_format(None)
    return plain.map(add, desc="cross-tokenizer columns"), (unshared, share)


def loss_costs(vocab: int, tokens: int, k: int, device: str, repeats: int = 7) -> dict[str, float]:
    """Best-of-`repeats` seconds of loss forward+backward on [tokens, vocab] logits: same-vocab
    KD vs cross-tokenizer KD, interleaved so load on a shared machine hits both alike."""
    from tasks.distill.loss import kd_loss
    from tasks.distill.xtok import xtok_divergence

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(tokens, vocab, generator=gen).to(device).requires_grad_()
    targets = torch.randint(0, vocab, (tokens,), generator=gen).to(device)
    ids = torch.randint(0, vocab, (tokens, k), generator=gen).to(device)
    lp = torch.log_softmax(torch.randn(tokens, k, generator=gen), -1).to(device) - 0.1
    tail = 1 - lp.exp().sum(-1)
    unshared = (torch.rand(vocab, generator=gen) >= 0.8).to(device)
    sids = torch.where(unshared[ids], -1, ids)

    def same() -> torch.Tensor:
        return kd_loss(logits, targets, ids, lp, tail, alpha=0.5, temperature=2.0)[0]

    def cross() -> torch.Tensor:
        ce = torch.nn.functional.cross_entropy(logits, targets)
        kl, uld = xtok_divergence(logits, sids, lp, unshared, temperature=2.0, matched_weight=0.8)
        return 0.5 * ce + 0.5 * 4.0 * (kl + uld).mean()

    # Wall-clock and this process's CPU seconds: on a shared CPU box the latter is what other
    # load disturbs least; both best-of-`repeats`.
    best = {k: float("inf") for k in ("same_vocab", "xtok", "same_vocab_cpu", "xtok_cpu")}
    for _ in range(repeats):
        for name, fn in (("same_vocab", same), ("xtok", cross)):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, cpu = time.perf_counter(), time.process_time()
            fn().backward()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], time.process_time() - cpu)
            logits.grad = None
    return best
