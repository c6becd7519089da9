"""The memory plan: its shapes count the real models' parameters, and it acts on the numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from peft import get_peft_model
from transformers import AutoModelForCausalLM

from tasks.distill.config import DistillConfig
from tasks.distill.memory import device_workload, plan_memory
from tasks.models.adapters import lora_config
from tasks.models.load import materialize_preset
from tasks.models.memory_plan import (
    GIB,
    HUB_SHAPES,
    MemoryPlanError,
    estimate,
    fit_batch,
    preset_shape,
)
from tasks.models.presets import get_preset

# Parameter totals the model cards state, in billions.
PUBLISHED = {
    "mistralai/Mistral-7B-Instruct-v0.3": 7.25,
    "Qwen/Qwen2.5-7B-Instruct": 7.62,
    "meta-llama/Llama-3.1-8B-Instruct": 8.03,
    "microsoft/Phi-3-mini-4k-instruct": 3.82,
    "meta-llama/Llama-3.2-1B-Instruct": 1.24,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 1.10,
}


@pytest.mark.parametrize("hub_id", sorted(PUBLISHED))
def test_seed_shapes_add_up_to_the_published_sizes(hub_id: str) -> None:
    # Qwen2.5's q/k/v biases (0.2 M) are the only parameters the shapes leave out.
    assert HUB_SHAPES[hub_id].params / 1e9 == pytest.approx(PUBLISHED[hub_id], rel=0.006)


@pytest.mark.parametrize("name", ["tiny-llama-student", "tiny-phi3-student", "tiny-llama-teacher"])
def test_counts_match_the_built_model_and_its_lora(name: str) -> None:
    shape = preset_shape(name)
    model = AutoModelForCausalLM.from_pretrained(materialize_preset(name))
    assert shape.params == sum(p.numel() for p in model.parameters())
    preset = get_preset(name)
    peft = get_peft_model(model, lora_config(preset))
    trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    assert shape.lora_params(preset.lora_targets, preset.lora_r) == trainable


def test_a_batch_that_does_not_fit_is_split_and_nothing_fits_is_refused() -> None:
    config = DistillConfig(per_device_batch_size=8, grad_accum=2, teacher_batch_size=1)
    work = device_workload("tiny-llama-teacher", "tiny-llama-student", config, "cpu")
    at = {b: estimate(replace(work, batch=b), 0).peak for b in (1, 2, 4, 8)}
    assert at[1] < at[2] < at[4] < at[8]  # activations and logits grow with the batch
    between = (at[2] + at[4]) / 2
    fitted = fit_batch(work, between)
    assert fitted is not None and (fitted.batch, fitted.grad_accum) == (2, 8)  # 8 × 2 = 2 × 8
    assert fit_batch(work, at[8]) == work
    assert fit_batch(work, at[1] * 0.9) is None

    same, line, _ = plan_memory("tiny-llama-teacher", "tiny-llama-student", config, "cpu", at[8])
    assert same == config and "batch 8 × 2" in line
    smaller, line, _ = plan_memory(
        "tiny-llama-teacher", "tiny-llama-student", config, "cpu", between
    )
    assert (smaller.per_device_batch_size, smaller.grad_accum) == (2, 8)
    assert "training with batch 2 × accumulation 8" in line
    with pytest.raises(MemoryPlanError, match="does not fit cpu .* even at batch 1") as refused:
        plan_memory("tiny-llama-teacher", "tiny-llama-student", config, "cpu", at[1] * 0.9)
    assert "training phase" in str(refused.value)  # the numbers come with the refusal


def test_four_bit_and_checkpointing_shrink_what_they_should() -> None:
    config = DistillConfig()
    from tasks.distill.memory import workload

    bf16 = workload("qwen2.5-7b-instruct", "phi-3-mini-4k-instruct", config,
                    weight_bytes=2.0, nf4_possible=False)  # fmt: skip
    nf4 = replace(bf16, teacher_4bit=True, student_4bit=True)
    full, quantized = estimate(bf16, 80 * GIB), estimate(nf4, 80 * GIB)
    # 4 bits a weight in the decoder layers; Qwen's 152k-token embeddings stay 16-bit.
    assert quantized.parts["teacher weights (NF4)"] < 0.4 * full.parts["teacher weights"]
    assert quantized.parts["teacher logits"] == full.parts["teacher logits"]
    assert quantized.parts["activations"] == full.parts["activations"]
    saved = estimate(replace(bf16, gradient_checkpointing=True), 80 * GIB)
    assert saved.parts["activations"] < full.parts["activations"] / 4
