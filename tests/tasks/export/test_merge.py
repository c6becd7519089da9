"""merge_adapter: the merged model computes what the base model with its adapter computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from tasks.export import merge_adapter
from tests.tasks.export.conftest import PARITY_TEXTS


def _save_adapter(base_dir: Path, out: Path, targets: list[str]) -> torch.nn.Module:
    """A LoRA adapter with non-zero B (PEFT starts B at zero, which would merge to a no-op)."""
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    peft_model = get_peft_model(base, config).eval()
    peft_model.save_pretrained(out)
    return peft_model


@pytest.mark.parametrize(
    ("arch", "targets"),
    [
        ("llama", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        ("phi3", ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
    ],
)
def test_merged_equals_model_with_adapter(
    arch: str, targets: list[str], model_dirs: dict, tmp_path: Path
) -> None:
    base_dir = model_dirs[arch]
    peft_model = _save_adapter(base_dir, tmp_path / "adapter", targets)
    merged_dir = merge_adapter(base_dir, tmp_path / "adapter", tmp_path / "merged")
    assert (merged_dir / "model.safetensors").is_file()
    assert not (merged_dir / "adapter_config.json").exists()
    ids = AutoTokenizer.from_pretrained(merged_dir)(PARITY_TEXTS[1], return_tensors="pt")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    with torch.no_grad():
        expected = peft_model(**ids).logits
        got = merged(**ids).logits
        before = base(**ids).logits
    scale = expected.abs().max().item()  # fp32 summation order differs: relative to the logits
    torch.testing.assert_close(got, expected, atol=2e-5 * scale, rtol=1e-4)
    assert (got - before).abs().max() > 1e-3  # the adapter did change the model


def test_no_adapter_copies_base_and_fp16_is_saved_as_fp16(llama_dir: Path, tmp_path: Path) -> None:
    out = merge_adapter(llama_dir, None, tmp_path / "m16", dtype="float16")
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    half = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    w = "model.layers.0.mlp.down_proj.weight"
    torch.testing.assert_close(half.state_dict()[w], base.state_dict()[w], atol=1e-3, rtol=1e-3)
    # Merging again into the same directory replaces it rather than mixing two models.
    again = merge_adapter(llama_dir, None, tmp_path / "m16")
    assert json.loads((again / "config.json").read_text())["dtype"] == "float32"


def test_bad_directories_are_named(llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        merge_adapter(tmp_path, None, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        merge_adapter(llama_dir, tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="bfloat8"):
        merge_adapter(llama_dir, None, tmp_path / "out", dtype="bfloat8")


def test_merged_folder_keeps_the_model_card_and_sentencepiece_model(
    student_dirs: dict, tmp_path: Path
) -> None:
    """The card carries the base's license and lineage, which the GGUF converter reads."""
    base = student_dirs["tiny-tinyllama-1.1b"]
    out = merge_adapter(base, None, tmp_path / "merged")
    assert (out / "README.md").read_text() == (base / "README.md").read_text()
    assert "license: apache-2.0" in (out / "README.md").read_text()
    # the SentencePiece model too: llama.cpp's converter reads its scores and piece types
    assert (out / "tokenizer.model").read_bytes() == (base / "tokenizer.model").read_bytes()
