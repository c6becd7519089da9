"""Real PEFT LoRA adapters on tiny models, their merged models and GGUF files (test helpers)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from tasks.export.adapter_gguf import convert_lora_to_gguf
from tasks.export.gguf_export import write_gguf
from tasks.export.merge import merge_adapter

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHI3_TARGETS = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]


def make_adapter(
    base_dir: Path,
    out_dir: Path,
    seed: int,
    rank: int = 8,
    strength: float = 0.2,
    use_dora: bool = False,
) -> Path:
    """A LoRA on every projection with non-zero B (as after training), saved with PEFT.

    `strength` (std of B) is large enough that the tiny model's greedy answers change.
    """
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    targets = PHI3_TARGETS if model.config.model_type == "phi3" else LLAMA_TARGETS
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=targets,
        task_type="CAUSAL_LM",
        use_dora=use_dora,
    )
    peft = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: a no-op adapter proves nothing
                param.copy_(torch.randn(param.shape, generator=generator) * strength)
    peft.save_pretrained(out_dir)
    return out_dir


def adapter_set(base_dir: Path, out: Path, seed: int, quant: str = "F16") -> dict[str, Path]:
    """{adapter_dir, adapter_gguf, merged_dir, merged_gguf} for one adapter of `base_dir`."""
    adapter_dir = make_adapter(base_dir, out / f"adapter-{seed}", seed)
    merged_dir = merge_adapter(base_dir, adapter_dir, out / f"merged-{seed}")
    merged_gguf = write_gguf(merged_dir, out / f"merged-{seed}-{quant}.gguf", quant)
    adapter = convert_lora_to_gguf(adapter_dir, base_dir, out / f"adapter-{seed}-F16.gguf")
    return {
        "adapter_dir": adapter_dir,
        "adapter_gguf": adapter.file.path,
        "merged_dir": merged_dir,
        "merged_gguf": merged_gguf.path,
    }
