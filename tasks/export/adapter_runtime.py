"""One base GGUF loaded once in llama.cpp, with LoRA adapters switched at run time.

What a phone does with several agents: load the base, load each agent's adapter once
(`llama_adapter_lora_init`), and set the one to answer with on the context
(`llama_set_adapters_lora`) without reloading the base. llama-cpp-python's `Llama(lora_path=)`
binds one adapter at construction only, hence the low-level calls here.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.export.llama_cpp import LlamaCppModel, llama_warnings_quiet


class AdapterError(RuntimeError):
    """llama.cpp refused an adapter (wrong architecture, shapes or file)."""


class BaseWithAdapters:
    """A base model plus named adapters; `use(name)` picks which one answers next."""

    def __init__(self, base_gguf: Path, n_ctx: int = 512) -> None:
        self.model = LlamaCppModel(Path(base_gguf), n_ctx=n_ctx)
        self.lib = self.model.lib
        self._adapters: dict[str, Any] = {}
        self.active: str | None = None

    def load(self, name: str, adapter_gguf: Path) -> None:
        """Load a GGUF adapter for this base (kept until close; freed with the model)."""
        if name in self._adapters:
            raise ValueError(f"adapter {name!r} is already loaded")
        with llama_warnings_quiet():  # a refused adapter is NULL: AdapterError below
            adapter = self.lib.llama_adapter_lora_init(
                self.model.llm.model, str(adapter_gguf).encode("utf-8")
            )
        if not adapter:
            raise AdapterError(f"llama.cpp could not load adapter {adapter_gguf} on this base")
        self._adapters[name] = adapter

    def use(self, name: str | None, scale: float = 1.0) -> None:
        """Answer with adapter `name` at `scale` from now on (None: the plain base)."""
        ctx = self.model.llm._ctx.ctx
        if name is None:
            status = self.lib.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            if name not in self._adapters:
                raise KeyError(f"no adapter {name!r}; loaded: {sorted(self._adapters)}")
            adapters = (self.lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(scale)
            status = self.lib.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if status != 0:
            raise AdapterError(f"llama_set_adapters_lora failed with status {status}")
        self.active = name

    def logits(self, ids: Sequence[int]) -> Any:
        """Next-token logits with the active adapter (the KV cache is rebuilt: no stale state)."""
        return self.model.logits(ids)

    def generate(self, prompt: str, max_tokens: int = 16) -> tuple[int, str]:
        """Greedy completion with the active adapter."""
        return self.model.generate(prompt, max_tokens)

    def greedy_ids(self, ids: Sequence[int], max_tokens: int) -> list[int]:
        """Greedy continuation of `ids` as token ids (no text round trip)."""
        return greedy_ids(self.model, ids, max_tokens)

    def close(self) -> None:
        """Free the model; llama.cpp frees its adapters with it."""
        self._adapters.clear()
        self.model.close()


def greedy_ids(model: LlamaCppModel, ids: Sequence[int], max_tokens: int) -> list[int]:
    """Argmax decoding from `ids` for `max_tokens` steps, on llama.cpp's own logits."""
    llm = model.llm
    llm.reset()
    out: list[int] = []
    llm.eval(list(ids))
    for _ in range(max_tokens):
        token = int(llm.scores[llm.n_tokens - 1].argmax())
        out.append(token)
        if llm.token_eos() == token:
            break
        llm.eval([token])
    return out
