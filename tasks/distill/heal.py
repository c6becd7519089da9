"""Heal a pruned student once: distill the teacher into it on general prompts, merge, save.

A student made by dropping layers (the SmolLM2 student lost 6 of 30) answers badly, and a
weekly LoRA on a hundred records cannot repair it. Minitron-style pruning heals the pruned
model with a longer distillation from the unpruned teacher before it is used. Here that is a
one-time stage: logit KD from the teacher (its top-k distribution on every answer token, plus
cross-entropy on the reference answer) over the built-in training prompts, which never share
a prompt with the fixed benchmark. The LoRA is merged into the weights, and the result is
saved where `materialize_preset` looks for the healed preset, so every later stage (training,
evaluation, export, the phones' base GGUF) sees an ordinary student base.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill
from tasks.export.merge import merge_adapter
from tasks.models.load import local_preset_dir, materialize_preset
from tasks.models.presets import HealRecipe, ModelPreset, get_preset
from tasks.results import StageResult
from tasks.sampledata import training_tasks

log = logging.getLogger(__name__)


class HealResult(StageResult):
    """Where the healed base is and how its training went."""

    preset: str
    """The healed preset's name."""
    model_dir: str
    """The folder of the merged weights and tokenizer (what `materialize_preset` returns)."""
    built: bool
    """False when the healed base already existed and was reused."""
    seconds: float
    """Wall time of this call."""
    train_loss: float | None
    """The healing run's final training loss; None when reused."""


def healing_snapshot(path: Path, recipe: HealRecipe) -> Path:
    """The healing data as a snapshot: the training tasks' prompts with reference answers."""
    tasks = training_tasks()[: recipe.records]
    if len(tasks) < 16:
        raise ValueError(f"healing needs at least 16 training tasks, found {len(tasks)}")

    def messages(prompt: str, answer: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]

    rows = [messages(t.prompt, t.answer) for t in tasks]
    held = max(8, len(rows) // 20)  # a small validation split: the run logs its loss
    DatasetDict(
        {
            "train": Dataset.from_dict({"messages": rows[held:]}),
            "validation": Dataset.from_dict({"messages": rows[:held]}),
        }
    ).save_to_disk(str(path))
    return path


def heal_config(recipe: HealRecipe) -> DistillConfig:
    """The distillation settings of a healing run (logit KD from the recipe's teacher)."""
    return DistillConfig(
        strategy="logit",
        alpha=recipe.alpha,
        temperature=recipe.temperature,
        top_k=recipe.top_k,
        learning_rate=recipe.learning_rate,
        max_steps=recipe.steps,
        per_device_batch_size=recipe.batch_size,
        grad_accum=1,
        max_length=recipe.max_length,
        lora_r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        save_steps=max(25, recipe.steps // 4),  # an interrupted heal resumes from here
        logging_steps=max(1, recipe.steps // 20),
        seed=recipe.seed,
        resume=True,
    )


def heal(preset_name: str, *, force: bool = False) -> HealResult:
    """Build the healed base of `preset_name` (a preset with source "healed") unless it exists."""
    preset = get_preset(preset_name)
    recipe = _recipe_of(preset)
    target = local_preset_dir(preset)
    started = time.perf_counter()
    if (target / "config.json").is_file() and not force:
        return HealResult(
            preset=preset.name, model_dir=str(target), built=False, seconds=0.0, train_loss=None
        )
    work = target.parent / f"heal-work-{target.name}"
    metrics = build_healed(recipe, target, work)
    shutil.rmtree(work, ignore_errors=True)  # the merged weights are what is kept
    loss = metrics.get("train_loss")
    return HealResult(
        preset=preset.name,
        model_dir=str(target),
        built=True,
        seconds=time.perf_counter() - started,
        train_loss=float(loss) if loss is not None else None,
    )


def heal_if_needed(student: str) -> HealResult | None:
    """Heal `student` when it is a healed preset whose base is not built yet; else None."""
    if get_preset(student).source != "healed":
        return None
    return heal(student)


def build_healed(recipe: HealRecipe, target: Path, work: Path) -> dict[str, Any]:
    """Run the healing distillation in `work`, merge it, save model + tokenizer at `target`."""
    work.mkdir(parents=True, exist_ok=True)
    log.info(
        "healing %s: %d steps of logit KD from %s", recipe.student, recipe.steps, recipe.teacher
    )
    snapshot = healing_snapshot(work / "snapshot", recipe)
    result = distill(
        snapshot,
        teacher=recipe.teacher,
        student=recipe.student,
        output_dir=work / "distill",
        config=heal_config(recipe),
    )
    # The export stage's merge: fp32, verified adapter, written atomically beside the target.
    merge_adapter(materialize_preset(recipe.student), result.adapter_dir, target)
    record = {"recipe": recipe.to_dict(), "metrics": result.metrics}
    (target / "healing.json").write_text(json.dumps(record, indent=2, default=str))
    log.info("healed base saved at %s", target)
    return dict(result.metrics)


def _recipe_of(preset: ModelPreset) -> HealRecipe:
    if preset.source != "healed" or preset.heal is None:
        raise ValueError(f"preset {preset.name!r} is not a healed student (source {preset.source})")
    return preset.heal
