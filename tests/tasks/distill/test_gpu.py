"""CUDA paths: QLoRA (NF4 base + LoRA) and bf16 logit KD on tiny models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill
from tasks.models.load import load_model_and_tokenizer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
needs_bnb = pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes (QLoRA)"
)
FAST = {
    "max_steps": 3,
    "save_steps": 100,
    "per_device_batch_size": 4,
    "top_k": 8,
    "max_length": 128,
    "device": "cuda",
}


@needs_bnb
def test_qlora_loads_nf4_base_with_trainable_lora() -> None:
    import bitsandbytes as bnb
    from peft import get_peft_model

    from tasks.models.adapters import lora_config
    from tasks.models.presets import get_preset

    model, _ = load_model_and_tokenizer(
        "tiny-llama-student", device="cuda", for_training=True, quantize_4bit=True
    )
    proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(proj, bnb.nn.Linear4bit) and proj.weight.quant_type == "nf4"
    peft = get_peft_model(model, lora_config(get_preset("tiny-llama-student")))
    trainable = [n for n, p in peft.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


@needs_bnb
def test_qlora_logit_distillation_on_cuda(make_snapshot, tmp_path: Path) -> None:
    res = distill(
        make_snapshot(n_train=8),
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=DistillConfig(quantize_4bit=True, merge=True, **FAST),
    )
    assert res.strategy == "logit" and res.metrics["global_step"] == 3
    assert torch.isfinite(torch.tensor(res.metrics["train_loss"]))
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
    assert (Path(res.metrics["merged_dir"]) / "config.json").is_file()


def test_bf16_logit_distillation_on_cuda(make_snapshot, tmp_path: Path) -> None:
    res = distill(
        make_snapshot(n_train=8),
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=DistillConfig(quantize_4bit=False, **FAST),
    )
    assert res.metrics["global_step"] == 3
    assert torch.isfinite(torch.tensor(res.metrics["eval_loss"]))
