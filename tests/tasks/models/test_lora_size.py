"""Each student's LoRA rank keeps its weekly update inside the budget share of its phone file."""

from __future__ import annotations

import pytest

from tasks.models.lora_size import (
    LLAMA_32_1B,
    PHI_3_MINI,
    PHONE_FILE_BYTES,
    SMOLLM2_135M,
    TINYLLAMA,
    UPDATE_BUDGET,
    lora_gguf_bytes,
)
from tasks.models.presets import get_preset, preset_names

SHAPES = {s.hub_id: s for s in (LLAMA_32_1B, PHI_3_MINI, TINYLLAMA)}


def update_share(name: str) -> float:
    """The F16 adapter at the preset's rank ÷ the student's phone file."""
    preset = get_preset(name)
    if preset.source in ("pruned_smollm2", "healed"):
        layers = SMOLLM2_135M.num_hidden_layers - len(preset.pruned_layers)
        update = lora_gguf_bytes(SMOLLM2_135M, preset.lora_r, "F16", layers=layers)
        # Healing changes weights, not shapes: its phone file is the pruned student's size.
        return update / PHONE_FILE_BYTES[preset.heal.student if preset.heal else name]
    update = lora_gguf_bytes(SHAPES[preset.hub_id], preset.lora_r, "F16")
    return update / PHONE_FILE_BYTES[preset.hub_id]


@pytest.mark.parametrize(
    "name", [n for n in preset_names("student") if get_preset(n).source != "tiny"]
)
def test_student_rank_keeps_weekly_update_within_budget(name: str) -> None:
    assert update_share(name) <= UPDATE_BUDGET


def test_rank_16_on_the_smollm2_student_would_break_the_budget() -> None:
    # Why the preset says rank 8: the same LoRA at rank 16 is 8.6% of the file.
    pruned = get_preset("smollm2-pruned-student").pruned_layers
    layers = SMOLLM2_135M.num_hidden_layers - len(pruned)
    update = lora_gguf_bytes(SMOLLM2_135M, 16, "F16", layers=layers)
    assert update / PHONE_FILE_BYTES["smollm2-pruned-student"] > UPDATE_BUDGET
