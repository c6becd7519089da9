"""Merge a LoRA adapter into its base model and save a plain HF directory (safetensors)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tasks.models.runtime_downloads import allow_runtime_downloads

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16}


def _tokenizer_source(base_dir: Path, adapter_dir: Path | None) -> Path:
    """The adapter's own tokenizer wins (training may have changed the template)."""
    if adapter_dir is not None and (adapter_dir / "tokenizer_config.json").is_file():
        return adapter_dir
    return base_dir


def merge_adapter(
    base_dir: Path, adapter_dir: Path | None, out_dir: Path, *, dtype: str = "float32"
) -> Path:
    """Fold `adapter_dir` (PEFT LoRA) into the model in `base_dir`; save both to `out_dir`.

    With `adapter_dir=None` the base is copied as is, so the caller can export a base model
    through the same path.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    if not (base_dir / "config.json").is_file():
        raise FileNotFoundError(f"{base_dir} is not a HF model directory (no config.json)")
    allow_runtime_downloads()
    # Merge in fp32 whatever the target dtype: adding B@A to fp16 weights loses the small deltas.
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from tasks.models.adapters import load_adapter_verified

        adapter_dir = Path(adapter_dir)
        model = load_adapter_verified(model, adapter_dir, trainable=False).merge_and_unload()
    module: torch.nn.Module = model  # PreTrainedModel.to is wrapped: typed through nn.Module
    module.to(DTYPES[dtype]).eval()  # in place
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_source(base_dir, adapter_dir))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and rename, so a reader never sees half a model.
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # The model card carries the base's license and lineage; the GGUF converter reads it.
        if (base_dir / "README.md").is_file():
            shutil.copy2(base_dir / "README.md", tmp / "README.md")
        # transformers 5 saves SentencePiece tokenizers as tokenizer.json only; llama.cpp's
        # converter reads scores and piece types from tokenizer.model (Phi-3, TinyLlama).
        # A trained adapter saves its tokenizer without one: the base's pieces are the same.
        for source in (_tokenizer_source(base_dir, adapter_dir), base_dir):
            if (source / "tokenizer.model").is_file() and not (tmp / "tokenizer.model").exists():
                shutil.copy2(source / "tokenizer.model", tmp / "tokenizer.model")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("merged %s + %s -> %s (%s)", base_dir, adapter_dir, out_dir, dtype)
    return out_dir
