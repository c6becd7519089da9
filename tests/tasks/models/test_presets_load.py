"""Presets, local materialization, layer pruning and verified adapter loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from peft import get_peft_model

from tasks.models.adapters import AdapterMismatchError, lora_config
from tasks.models.load import load_model_and_tokenizer, materialize_preset, prune_layers
from tasks.models.presets import PRESETS, get_preset
from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

COMMIT = re.compile(r"[0-9a-f]{40}")


def test_required_presets_exist_with_lora_defaults() -> None:
    for name in (
        "mistral-7b-instruct-v0.3",
        "qwen2.5-7b-instruct",
        "llama-3.1-8b-instruct",
        "phi-3-mini-4k-instruct",
        "llama-3.2-1b-instruct",
        "tinyllama-1.1b-chat",
        "smollm2-135m-instruct",
        "smollm2-pruned-student",
    ):
        preset = get_preset(name)
        assert preset.revision and preset.max_seq_len > 0
    llama = get_preset("llama-3.2-1b-instruct")
    assert (llama.lora_r, llama.lora_alpha, llama.lora_dropout) == (16, 32, 0.05)
    assert set(llama.lora_targets) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert get_preset("llama-3.1-8b-instruct").load_in_4bit_on_cuda


def test_hub_presets_pin_a_commit_not_a_branch() -> None:
    # A branch such as "main" moves under us: the same preset would load other weights later.
    hub = {p.name: p.revision for p in PRESETS.values() if p.source == "hub"}
    assert len(hub) == 6, hub
    unpinned = {name: rev for name, rev in hub.items() if not COMMIT.fullmatch(rev)}
    assert not unpinned, f"Hub presets without a commit sha: {unpinned}"


def test_unknown_preset_error_lists_known_names() -> None:
    with pytest.raises(KeyError, match="tiny-llama-student"):
        get_preset("gpt-17")


def test_materialize_tiny_is_cached_and_loadable(_data_dir: Path) -> None:
    path = materialize_preset("tiny-llama-student")
    assert path.is_relative_to(_data_dir) and (path / "config.json").is_file()
    mtime = (path / "config.json").stat().st_mtime
    assert materialize_preset("tiny-llama-student") == path
    assert (path / "config.json").stat().st_mtime == mtime
    model, tok = load_model_and_tokenizer("tiny-llama-student", device="cpu")
    assert tok.get_vocab() == build_tiny_tokenizer("a").get_vocab()
    ref = build_tiny_model("llama", tok, seed=get_preset("tiny-llama-student").tiny_seed)
    assert torch.equal(model.lm_head.weight, ref.lm_head.weight)
    assert not model.training


def test_prune_layers_renumbers_and_generates() -> None:
    tok = build_tiny_tokenizer("a")
    model = build_tiny_model("llama", tok, num_layers=5)
    prune_layers(model, (1, 2))
    assert model.config.num_hidden_layers == 3
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2]
    ids = tok("The capital of France", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4
    with pytest.raises(ValueError, match="3 layers"):
        prune_layers(model, (7,))


def test_adapter_loads_verified_and_mismatch_raises(tmp_path: Path) -> None:
    model, _ = load_model_and_tokenizer("tiny-llama-student", device="cpu")
    peft = get_peft_model(model, lora_config(get_preset("tiny-llama-student")))
    for name, param in peft.named_parameters():
        if "lora_B" in name:  # non-zero so a silently skipped tensor would be noticed
            torch.nn.init.normal_(param)
    peft.save_pretrained(tmp_path / "adapter")
    loaded, _ = load_model_and_tokenizer(
        "tiny-llama-student", adapter_dir=tmp_path / "adapter", device="cpu"
    )
    ref = dict(peft.named_parameters())
    for name, param in loaded.named_parameters():
        if "lora_B" in name:
            assert torch.equal(param, ref[name])
    # Same targets, other vocabulary/shape family: the phi3 student has fused projections.
    with pytest.raises((AdapterMismatchError, ValueError)):
        load_model_and_tokenizer("tiny-phi3-student", adapter_dir=tmp_path / "adapter")


def test_every_preset_name_matches_its_key() -> None:
    assert all(name == preset.name for name, preset in PRESETS.items())


def test_adapter_for_more_layers_is_refused_not_silently_skipped(tmp_path: Path) -> None:
    from tasks.models.adapters import load_adapter_verified

    tok = build_tiny_tokenizer("a")
    cfg = lora_config(get_preset("tiny-llama-student"))
    get_peft_model(build_tiny_model("llama", tok, num_layers=3), cfg).save_pretrained(tmp_path)
    # PEFT itself only warns about the third layer's tensors; the check must raise.
    with pytest.raises(AdapterMismatchError, match="no place in the model"):
        load_adapter_verified(
            build_tiny_model("llama", tok, num_layers=2), tmp_path, trainable=False
        )
