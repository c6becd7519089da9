"""Parity check: a GGUF file read back by transformers must keep the merged model's perplexity."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

# Relative perplexity increase allowed per quantization before a file is not publishable.
DEFAULT_TOLERANCES = {
    "F32": 0.001,
    "F16": 0.005,
    "Q8_0": 0.02,
    "Q4_0": 0.15,
    "Q4_1": 0.15,
    "Q4_K_M": 0.10,
}


@dataclass(frozen=True)
class ParityResult:
    """Perplexity of the reference and the GGUF on the same tokens, and the verdict."""

    quantization: str
    ppl_reference: float
    ppl_gguf: float
    relative_delta: float
    passed: bool
    tolerance: float
    n_tokens: int = 0


# (token ids, index of the first scored position) per sequence
Scored = list[tuple[list[int], int]]


def score_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> Scored:
    """Every token of each text after the first is scored."""
    out = [(tokenizer(t, add_special_tokens=False)["input_ids"], 1) for t in texts if t.strip()]
    return [(ids, start) for ids, start in out if len(ids) > 1]


def score_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[Mapping[str, Any]]
) -> Scored:
    """Only the assistant's final answer is scored, in the chat template's framing."""
    out: Scored = []
    for i, row in enumerate(examples):
        messages = row.get("messages")
        if not messages or messages[-1].get("role") != "assistant":
            raise ValueError(f"example {i}: needs 'messages' ending with an assistant message")
        prompt = tokenizer.apply_chat_template(
            messages[:-1], tokenize=False, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if not full.startswith(prompt):
            raise ValueError(f"example {i}: chat template output does not extend the prompt")
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if len(ids) > n_prompt:
            out.append((ids, n_prompt))
    return out


@torch.no_grad()
def perplexity(model: torch.nn.Module, scored: Scored, max_len: int = 1024) -> tuple[float, int]:
    """Token-weighted perplexity over the scored positions, and how many tokens counted."""
    total_nll, total = 0.0, 0
    for ids, start in scored:
        ids = ids[:max_len]
        if len(ids) <= max(start, 1):
            continue
        input_ids = torch.tensor([ids])
        logits = model(input_ids).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, input_ids[0, 1:], reduction="none")
        # position p of nll predicts token p + 1; token `start` is the first one scored
        scored_nll = nll[max(start, 1) - 1 :]
        total_nll += scored_nll.sum().item()
        total += scored_nll.numel()
    if total == 0:
        raise ValueError("no tokens to score: give non-empty texts or examples")
    return math.exp(total_nll / total), total


def _inputs(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str] | None,
    examples: Sequence[Mapping[str, Any]] | None,
) -> Scored:
    if texts is None and examples is None:
        raise ValueError("check_parity needs texts or examples")
    scored = score_texts(tokenizer, texts or [])
    return scored + score_examples(tokenizer, examples or [])


def reference_perplexity(
    hf_dir: Path,
    texts: Sequence[str] | None = None,
    examples: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[float, int]:
    """Perplexity of the HF model in `hf_dir` (compute once, reuse for several GGUF files)."""
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    return perplexity(model, _inputs(tokenizer, texts, examples))


def gguf_quantization(gguf_path: Path) -> str:
    """The file type a GGUF file declares (F16, Q8_0, ...)."""
    from gguf import GGUFReader, LlamaFileType

    field = GGUFReader(gguf_path).fields.get("general.file_type")
    if field is None:
        return "UNKNOWN"
    return LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_").removeprefix("ALL_")


def check_parity(
    hf_dir: Path,
    gguf_path: Path,
    texts: Sequence[str] | None = None,
    examples: Sequence[Mapping[str, Any]] | None = None,
    tolerance: float | None = None,
    *,
    reference: tuple[float, int] | None = None,
) -> ParityResult:
    """Load `gguf_path` with transformers and compare its perplexity with the model in `hf_dir`."""
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF file {gguf_path} does not exist")
    quantization = gguf_quantization(gguf_path)
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCES.get(quantization, 0.15)
    # The reference tokenizer scores both models: the comparison is about weights, and the
    # GGUF's own tokenizer is checked separately (tests) against the same ids.
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    scored = _inputs(tokenizer, texts, examples)
    if reference is None:
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        reference = perplexity(model, scored)
        del model
    ppl_ref, n_tokens = reference
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    ).eval()
    ppl_gguf, _ = perplexity(gguf_model, scored)
    delta = (ppl_gguf - ppl_ref) / ppl_ref
    return ParityResult(
        quantization=quantization,
        ppl_reference=ppl_ref,
        ppl_gguf=ppl_gguf,
        relative_delta=delta,
        # |delta|: a file that is "better" by a wide margin is just as suspicious as a worse one.
        passed=math.isfinite(delta) and abs(delta) <= tolerance,
        tolerance=tolerance,
        n_tokens=n_tokens,
    )
