"""LoRA adapters: build a config from a preset and load saved adapters, verifying every tensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file

from tasks.models.presets import ModelPreset


def lora_config(preset: ModelPreset, **overrides: Any) -> LoraConfig:
    """The preset's LoRA settings (r, alpha, dropout, target modules) as a PEFT config."""
    kwargs: dict[str, Any] = {
        "r": preset.lora_r,
        "lora_alpha": preset.lora_alpha,
        "lora_dropout": preset.lora_dropout,
        "target_modules": list(preset.lora_targets),
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return LoraConfig(**kwargs)


class AdapterMismatchError(RuntimeError):
    """A saved adapter does not fit the model it is loaded onto."""


def _saved_adapter_tensors(adapter_dir: Path) -> dict[str, torch.Tensor]:
    st = adapter_dir / "adapter_model.safetensors"
    if st.is_file():
        return load_file(str(st))
    bin_ = adapter_dir / "adapter_model.bin"
    if bin_.is_file():
        return torch.load(bin_, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no adapter_model.safetensors or .bin in {adapter_dir}")


def verify_adapter_loaded(model: PeftModel, adapter_dir: Path) -> int:
    """Raise unless every saved tensor matches the live adapter by key, shape and value."""
    saved = _saved_adapter_tensors(adapter_dir)
    live = get_peft_model_state_dict(model)
    missing = sorted(set(saved) - set(live))
    absent = sorted(set(live) - set(saved))
    shapes = [
        f"{k}: saved {tuple(saved[k].shape)} vs model {tuple(live[k].shape)}"
        for k in sorted(set(saved) & set(live))
        if saved[k].shape != live[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} saved tensors have no place in the model: {missing[:3]}")
    if absent:
        problems.append(f"{len(absent)} model adapter tensors are not in the file: {absent[:3]}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {shapes[:3]}")
    if not problems:
        differ = [
            k for k in saved if not torch.equal(saved[k].to(live[k].dtype), live[k].detach().cpu())
        ]
        if differ:
            problems.append(f"{len(differ)} tensors did not load their values: {differ[:3]}")
    if problems:
        raise AdapterMismatchError(f"adapter {adapter_dir} does not fit: " + "; ".join(problems))
    return len(saved)


def load_adapter_verified(model: Any, adapter_dir: Path, *, trainable: bool) -> PeftModel:
    """PeftModel.from_pretrained (silent on mismatches) followed by a strict check."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} is not a PEFT adapter (no adapter_config.json)")
    try:
        peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
    except (RuntimeError, ValueError) as exc:  # size mismatch errors from load_state_dict
        raise AdapterMismatchError(f"adapter {adapter_dir} does not fit: {exc}") from exc
    verify_adapter_loaded(peft_model, adapter_dir)
    return peft_model
