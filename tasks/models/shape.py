"""Shape presets: the seed models at their real shapes with random weights (`shape-*`).

Each `shape-*` preset is its Hub preset's architecture, widths, vocabulary, tied or untied
embeddings, rope settings, tokenizer and chat template (tasks/models/tiny_seed.py builds
them, offline), with seeded random weights, so a whole cycle runs at the real sizes without
the real downloads: full depth on a GPU, or `shape-…-L<N>` (N decoder layers, the same widths
and vocabulary) on a CPU or in CI. Weights are saved in bf16, as the Hub ships the real ones.
The memory plan reads the published shape (tasks/models/memory_plan.py: HUB_SHAPES) at the
preset's depth, so `distillery memory` plans a full-depth shape preset as its real model.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

from tasks.models.llama_cpp_source import cache_dir
from tasks.models.memory_plan import HUB_SHAPES, ModelShape
from tasks.models.presets import ModelPreset
from tasks.models.seed_models import FIXTURE_VERSION, SeedModel, seed_model_for
from tasks.models.seed_tokenizer import build_seed_tokenizer
from tasks.models.tiny_seed import build_once, seed_config, seed_weights, write_model_card

log = logging.getLogger(__name__)


def _check(preset: ModelPreset) -> SeedModel:
    if preset.source != "shape":
        raise ValueError(f"{preset.name} is not a shape preset (source {preset.source!r})")
    return seed_model_for(preset.hub_id)


def shape_of(preset: ModelPreset) -> ModelShape:
    """The real model's published shape at the preset's depth."""
    _check(preset)
    return replace(HUB_SHAPES[preset.hub_id], layers=preset.shape_layers)


def tokenizer_dir(preset: ModelPreset) -> Path:
    """The real tokenizer of the preset's model, built once per machine (any depth shares it)."""
    model = _check(preset)
    final = cache_dir() / "tokenizers" / f"shape-{model.name}-{FIXTURE_VERSION}"
    return build_once(final, "tokenizer_config.json", lambda tmp: build_seed_tokenizer(model, tmp))


def write_shape_model(preset: ModelPreset, out_dir: Path) -> Path:
    """Write the preset's model (bf16 random weights) and tokenizer files into `out_dir`."""
    import torch
    from transformers import AutoTokenizer

    model = _check(preset)
    tokenizer_files = tokenizer_dir(preset)
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in tokenizer_files.iterdir():
        shutil.copy2(item, out_dir / item.name)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    config = seed_config(model, tokenizer, shape_of(preset))
    log.info("building %s: %s random bf16 weights", preset.name, f"{shape_of(preset).params:,}")
    seed_weights(config, preset.tiny_seed, dtype=torch.bfloat16).save_pretrained(out_dir)
    write_model_card(model, out_dir, f"{preset.name}: the shape of {model.real_model}")
    return out_dir
