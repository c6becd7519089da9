"""llama.cpp generation with each token's probability, exact entropy and top alternatives.

Why not llama-cpp-python's `create_chat_completion(logprobs=True)` (what its own server
runs): that path needs `logits_all=True` (an n_ctx x n_vocab float buffer) and sorts the
whole vocabulary in Python for every streamed token. Here the sampler runs as usual and the
last logits row is read once per token with numpy (argpartition for the top-k), which also
gives the exact entropy over the full vocabulary instead of a top-k estimate.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens (the probabilities reported are the model's own, temperature 1)."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    seed: int | None = None
    top_logprobs: int = 5


@dataclass(frozen=True)
class Token:
    """One generated token: text (may be '' while a UTF-8 character is incomplete) and stats."""

    id: int
    text: str
    piece: bytes
    logprob: float
    entropy: float
    top: list[tuple[str, float]]


@dataclass
class Outcome:
    """Filled in as a generation runs: counts, timings and why it stopped."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"
    prompt_s: float = 0.0
    generate_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def default_threads() -> int:
    """All cores but one: the per-token Python work and the service need a core, else
    llama.cpp's spinning threads starve them (measured on 2 cores: 1 thread ~47 tokens/s,
    2 threads 4-6 tokens/s with the service busy beside it)."""
    return max(1, (os.cpu_count() or 2) - 1)


class PromptTooLong(ValueError):
    """The prompt plus max_tokens does not fit the context."""


class Engine:
    """One model, one context: generations run one at a time (`lock`)."""

    def __init__(self, model: Path, *, n_ctx: int = 2048, threads: int = 0) -> None:
        self.path = model
        threads = threads or default_threads()
        self.llm = llama_cpp.Llama(
            model_path=str(model), n_ctx=n_ctx, n_threads=threads, verbose=False
        )
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = self.llm.n_ctx()
        self.lock = threading.Lock()
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model.name} has no tokenizer.chat_template in its metadata")
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(eos_id),
            bos_token=self._piece(bos_id) if bos_id >= 0 else "",
            stop_token_ids=[eos_id],
        )
        self._vocab = self.llm._model.vocab

    def _piece(self, token: int) -> str:
        return self.llm._model.token_get_text(token)

    def _is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat-formatted prompt, tokenized as llama-cpp-python's own chat handler does."""
        result = self.formatter(messages=cast(Any, messages))  # plain role/content dicts
        return self.llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )

    def generate(
        self,
        messages: list[dict[str, str]],
        sampling: Sampling,
        outcome: Outcome,
        cancel: threading.Event,
    ) -> Iterator[Token]:
        """Tokens as they are sampled; call under `lock`. Fills `outcome` as it goes."""
        prompt = self.prompt_tokens(messages)
        outcome.prompt_tokens = len(prompt)
        if len(prompt) + sampling.max_tokens > self.n_ctx:
            raise PromptTooLong(
                f"prompt is {len(prompt)} tokens; with max_tokens {sampling.max_tokens} it"
                f" exceeds the context of {self.n_ctx} tokens"
            )
        if sampling.seed is not None:
            self.llm.set_seed(sampling.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        k = max(1, min(sampling.top_logprobs, 20))
        started = time.perf_counter()
        first_at = started
        previous = list(prompt)
        stream = self.llm.generate(
            prompt,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            temp=sampling.temperature,
            repeat_penalty=1.0,
        )
        try:
            for token in stream:
                if outcome.completion_tokens == 0:
                    first_at = time.perf_counter()
                    outcome.prompt_s = first_at - started
                if self._is_end(token):
                    outcome.finish_reason = "stop"
                    break
                logprob, entropy, top = self._stats(token, k)
                piece = self.llm.detokenize([token], prev_tokens=previous)
                previous.append(token)
                outcome.completion_tokens += 1
                yield Token(token, decoder.decode(piece), piece, logprob, entropy, top)
                if cancel.is_set():
                    outcome.finish_reason = "cancelled"
                    break
                if outcome.completion_tokens >= sampling.max_tokens:
                    outcome.finish_reason = "length"
                    break
        finally:
            stream.close()
            outcome.generate_s = time.perf_counter() - first_at

    def _stats(self, token: int, k: int) -> tuple[float, float, list[tuple[str, float]]]:
        """log p(token), entropy and top-k of the logits the sampler just used (last row)."""
        ptr = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float64)
        logits -= logits.max()
        logz = np.log(np.exp(logits).sum())
        logp = logits - logz
        entropy = float(-(np.exp(logp) * logp).sum())
        top_ids = np.argpartition(-logp, k - 1)[:k]
        top_ids = top_ids[np.argsort(-logp[top_ids])]
        top = [
            (self.llm.detokenize([int(i)]).decode("utf-8", "replace"), float(logp[i]))
            for i in top_ids
        ]
        return float(logp[token]), max(entropy, 0.0), top
