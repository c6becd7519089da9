"""The one-time healing stage on tiny models: it trains, merges, saves a base, and is reused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from tasks.distill.heal import build_healed, heal, heal_if_needed, healing_snapshot
from tasks.models import presets
from tasks.models.load import NotHealedError, load_model_and_tokenizer, materialize_preset
from tasks.models.presets import HealRecipe, get_preset

TINY = HealRecipe(
    teacher="tiny-llama-teacher",
    student="tiny-llama-student",
    steps=3,
    batch_size=4,
    max_length=64,
    lora_r=4,
    lora_alpha=8,
    records=40,
)


@pytest.fixture
def tiny_healed(monkeypatch: pytest.MonkeyPatch) -> str:
    """A healed preset of the tiny student, registered for this test only."""
    base = get_preset("tiny-llama-student")
    preset = dataclasses.replace(
        base,
        name="tiny-llama-healed",
        revision=f"{base.revision}:healed-{TINY.fingerprint()}",
        source="healed",
        heal=TINY,
    )
    monkeypatch.setitem(presets.PRESETS, preset.name, preset)
    return preset.name


def test_the_healing_data_never_holds_a_benchmark_prompt(tmp_path: Path) -> None:
    from datasets import load_from_disk

    from tasks.sampledata import benchmark_tasks

    snap = load_from_disk(str(healing_snapshot(tmp_path / "snap", TINY)))
    prompts = {m[0]["content"] for split in snap.values() for m in split["messages"]}
    assert len(prompts) == 40 and len(snap["validation"]) == 8
    assert not prompts & {t.prompt for t in benchmark_tasks()}


def test_healed_weights_are_a_plain_model_that_differs_from_the_pruned_one(
    tmp_path: Path,
) -> None:
    target = tmp_path / "healed"
    metrics = build_healed(TINY, target, tmp_path / "work")
    assert metrics["global_step"] == 3 and metrics["train_loss"] > 0
    record = json.loads((target / "healing.json").read_text())
    assert record["recipe"] == TINY.to_dict()
    healed = AutoModelForCausalLM.from_pretrained(target)
    # Merged: no LoRA modules or adapter files left, the same shapes as the student.
    assert not any("lora" in n for n, _ in healed.named_parameters())
    assert not (target / "adapter_config.json").exists()
    student, _ = load_model_and_tokenizer("tiny-llama-student", device="cpu")
    ours, theirs = healed.state_dict(), student.state_dict()
    assert ours.keys() == theirs.keys()
    changed = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert changed and all("proj" in k for k in changed)  # LoRA touched the projections only


def test_a_healed_preset_is_built_once_then_reused(tiny_healed: str) -> None:
    with pytest.raises(NotHealedError, match=f"run `distillery heal {tiny_healed}`"):
        materialize_preset(tiny_healed)
    first = heal(tiny_healed)
    assert first.built and first.train_loss is not None
    assert Path(first.model_dir) == materialize_preset(tiny_healed)
    again = heal_if_needed(tiny_healed)
    assert again is not None and not again.built and again.model_dir == first.model_dir
    # Students that are not healed presets have nothing to heal.
    assert heal_if_needed("tiny-llama-student") is None
    # Every stage loads the healed preset like any student: the healed weights.
    model, _ = load_model_and_tokenizer(tiny_healed, device="cpu")
    saved = AutoModelForCausalLM.from_pretrained(first.model_dir).state_dict()
    assert all(torch.equal(t, saved[k]) for k, t in model.state_dict().items())


def test_a_changed_recipe_is_another_revision() -> None:
    shipped = get_preset("smollm2-healed-student")
    assert shipped.heal is not None
    assert shipped.revision.endswith(f"healed-{shipped.heal.fingerprint()}")
    longer = dataclasses.replace(shipped.heal, steps=shipped.heal.steps + 1)
    assert longer.fingerprint() != shipped.heal.fingerprint()
