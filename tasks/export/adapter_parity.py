"""Parity of the adapter path: base GGUF + GGUF adapter in llama.cpp vs the merged model.

The same judge and tolerances as the merged file (tasks/export/parity.py): perplexity and
top-1 agreement against the merged HF model on the same tokens. On top, greedy decoding from
fixed prompts must give the same tokens as the merged GGUF file phones would otherwise run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer

from tasks.export.adapter_runtime import BaseWithAdapters, greedy_ids
from tasks.export.llama_cpp import LlamaCppModel
from tasks.export.parity import (
    DEFAULT_MIN_TOP1,
    DEFAULT_TOLERANCES,
    Reference,
    Scored,
    _inputs,
    _nll_top1,
    _scored_part,
    gguf_quantization,
    reference_perplexity,
)

# Least share of prompts whose greedy continuation equals the merged file's, by the base's
# quantization. Unquantized bases must match token for token (only rounding differs: W + BA
# summed before vs after F16 storage); a quantized base rounds W alone while the merged file
# rounds W + BA, so a near-tie may flip there and only the perplexity bounds apply.
DEFAULT_MIN_SAME_GREEDY = {"F32": 1.0, "F16": 1.0}


@dataclass(frozen=True)
class AdapterParity:
    """The adapter path's verdict: perplexity, top-1 and greedy agreement with the merged model."""

    base_quantization: str
    adapter_quantization: str
    ppl_reference: float
    ppl_adapter: float
    relative_delta: float
    tolerance: float
    top1_agreement: float
    min_top1: float
    greedy_same: int
    greedy_prompts: int
    min_same_greedy: float
    passed: bool
    n_tokens: int
    judge: str = "llama.cpp"

    @property
    def reason(self) -> str:
        """One line for logs and the cycle summary."""
        return (
            f"adapter path ({self.base_quantization} base + {self.adapter_quantization} "
            f"adapter): perplexity {self.ppl_adapter:.4f} vs {self.ppl_reference:.4f} "
            f"({self.relative_delta:+.2%}, tolerance {self.tolerance:.2%}), top-1 "
            f"{self.top1_agreement:.1%} (min {self.min_top1:.0%}), greedy tokens equal to the "
            f"merged file on {self.greedy_same}/{self.greedy_prompts} prompts"
        )


def _scores(runner: BaseWithAdapters, parts: Scored, reference: Reference) -> tuple[float, float]:
    total_nll, total, same = 0.0, 0, 0
    for (ids, start), ref_top1 in zip(parts, reference.top1, strict=True):
        nll, best = _nll_top1(runner.logits(ids), ids, start)
        total_nll, total = total_nll + float(nll.sum()), total + nll.size
        same += int((best == np.asarray(ref_top1)).sum())
    return math.exp(total_nll / total), same / total


def greedy_agreement(
    base_gguf: Path,
    adapter_gguf: Path,
    merged_gguf: Path,
    prompt_ids: Sequence[Sequence[int]],
    max_tokens: int = 16,
) -> tuple[int, list[tuple[list[int], list[int]]]]:
    """(prompts with identical greedy tokens, [(adapter path ids, merged file ids)])."""
    n_ctx = max(64, max(len(p) for p in prompt_ids) + max_tokens + 8)
    runner = BaseWithAdapters(base_gguf, n_ctx=n_ctx)
    try:
        runner.load("candidate", adapter_gguf)
        runner.use("candidate")
        ours = [runner.greedy_ids(p, max_tokens) for p in prompt_ids]
    finally:
        runner.close()
    merged = LlamaCppModel(merged_gguf, n_ctx=n_ctx)
    try:
        theirs = [greedy_ids(merged, p, max_tokens) for p in prompt_ids]
    finally:
        merged.close()
    pairs = list(zip(ours, theirs, strict=True))
    return sum(a == b for a, b in pairs), pairs


def check_adapter_parity(
    merged_hf_dir: Path,
    base_gguf: Path,
    adapter_gguf: Path,
    merged_gguf: Path,
    texts: Sequence[str] | None = None,
    examples: Sequence[Mapping[str, Any]] | None = None,
    *,
    prompts: Sequence[str] | None = None,
    reference: Reference | None = None,
    tolerance: float | None = None,
    min_top1: float | None = None,
    min_same_greedy: float | None = None,
    max_tokens: int = 16,
) -> AdapterParity:
    """Judge base + adapter in llama.cpp against the merged HF model and the merged GGUF."""
    base_quant = gguf_quantization(Path(base_gguf))
    tolerance = DEFAULT_TOLERANCES.get(base_quant, 0.15) if tolerance is None else tolerance
    min_top1 = DEFAULT_MIN_TOP1.get(base_quant, 0.75) if min_top1 is None else min_top1
    if min_same_greedy is None:
        min_same_greedy = DEFAULT_MIN_SAME_GREEDY.get(base_quant, 0.0)
    tokenizer = AutoTokenizer.from_pretrained(merged_hf_dir)
    scored = _inputs(tokenizer, texts, examples)
    if reference is None:
        reference = reference_perplexity(merged_hf_dir, texts, examples)
    parts = [p for p in (_scored_part(ids, s, 1024) for ids, s in scored) if p is not None]
    runner = BaseWithAdapters(Path(base_gguf), n_ctx=max(64, max(len(i) for i, _ in parts) + 8))
    try:
        runner.load("candidate", Path(adapter_gguf))
        runner.use("candidate")
        ppl, top1 = _scores(runner, parts, reference)
    finally:
        runner.close()
    # Greedy prompts: the given ones, else the scored texts' first tokens (a fixed set).
    prompt_ids = (
        [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if prompts
        else [ids[: start if start > 1 else max(2, len(ids) // 2)] for ids, start in parts]
    )
    same, _ = greedy_agreement(
        Path(base_gguf), Path(adapter_gguf), Path(merged_gguf), prompt_ids, max_tokens
    )
    delta = (ppl - reference.ppl) / reference.ppl
    passed = (
        math.isfinite(delta)
        and abs(delta) <= tolerance
        and top1 >= min_top1
        and same >= min_same_greedy * len(prompt_ids)
    )
    return AdapterParity(
        base_quantization=base_quant,
        adapter_quantization=gguf_quantization(Path(adapter_gguf)),
        ppl_reference=reference.ppl,
        ppl_adapter=ppl,
        relative_delta=delta,
        tolerance=tolerance,
        top1_agreement=top1,
        min_top1=min_top1,
        greedy_same=same,
        greedy_prompts=len(prompt_ids),
        min_same_greedy=min_same_greedy,
        passed=passed,
        n_tokens=reference.n_tokens,
    )
