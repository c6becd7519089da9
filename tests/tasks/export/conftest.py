"""Tiny llama and phi3 models saved as HF directories, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

# Short English texts: parity perplexity is scored over every token of each.
PARITY_TEXTS = [
    "Rewrite the sentence and make your writing clearer by keeping it concise.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "Give three tips for staying healthy during the winter months.",
    "How many days are there in a leap year? There are 366 days in a leap year.",
]


def save_variant(out_dir: Path, arch: str, **config_changes: object) -> Path:
    """Save the shared tiny model of `arch`, with config changes (e.g. GQA, tied embeddings)."""
    tokenizer = build_tiny_tokenizer("a")
    model = build_tiny_model(arch, tokenizer, seed=0)  # type: ignore[arg-type]
    if config_changes:
        config = AutoConfig.for_model(**(model.config.to_dict() | config_changes))
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).float().eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny llama with grouped-query attention (k permuted per kv head) and tied embeddings."""
    out = tmp_path_factory.mktemp("tiny-llama")
    return save_variant(out, "llama", num_key_value_heads=2, tie_word_embeddings=True)


@pytest.fixture(scope="session")
def phi3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny phi3 (fused qkv and gate_up projections, separate output matrix)."""
    return save_variant(tmp_path_factory.mktemp("tiny-phi3"), "phi3", num_key_value_heads=2)


@pytest.fixture(scope="session")
def model_dirs(llama_dir: Path, phi3_dir: Path) -> dict[str, Path]:
    return {"llama": llama_dir, "phi3": phi3_dir}


@pytest.fixture
def parity_texts() -> list[str]:
    return list(PARITY_TEXTS)
