"""The memory plan of one distillation: checked before any model loads, and acted on."""

from __future__ import annotations

from dataclasses import replace

from tasks.distill.config import DistillConfig
from tasks.models.load import cuda_4bit_available
from tasks.models.memory_plan import (
    GIB,
    Estimate,
    MemoryPlanError,
    Workload,
    estimate,
    fit_batch,
    preset_shape,
)
from tasks.models.precision import device_precision
from tasks.models.presets import ModelPreset, get_preset
from tasks.models.remote import remote_teacher


def _four_bit(preset: ModelPreset, config: DistillConfig, nf4_possible: bool) -> bool:
    """What load_model_and_tokenizer will decide: NF4 only where CUDA has bitsandbytes."""
    if config.quantize_4bit is not None:
        return config.quantize_4bit and nf4_possible
    return preset.load_in_4bit_on_cuda and nf4_possible


def workload(
    teacher: str,
    student: str,
    config: DistillConfig,
    *,
    weight_bytes: float,
    nf4_possible: bool,
) -> Workload:
    """The distillation as the memory plan sees it, from the presets and the config;
    `weight_bytes` 2 (bf16/fp16) or 4 (fp32), `nf4_possible`: CUDA with bitsandbytes."""
    s_preset = get_preset(student)
    remote = remote_teacher(teacher) is not None
    s_shape = preset_shape(student)
    max_length = config.max_length or s_preset.max_seq_len
    batch = config.per_device_batch_size or s_preset.per_device_batch_size
    if config.batch_tokens is not None:  # the budget's tokens as records of the longest length
        batch = -(-config.batch_tokens // max_length)
    return Workload(
        teacher=s_shape if remote else preset_shape(teacher),
        student=s_shape,
        lora_targets=s_preset.lora_targets,
        lora_rank=config.lora_r or s_preset.lora_r,
        batch=batch,
        grad_accum=config.grad_accum or s_preset.grad_accum,
        max_length=max_length,
        teacher_batch=config.teacher_batch_size,
        weight_bytes=weight_bytes,
        teacher_4bit=not remote and _four_bit(get_preset(teacher), config, nf4_possible),
        student_4bit=_four_bit(s_preset, config, nf4_possible),
        gradient_checkpointing=config.gradient_checkpointing,
        teacher_runs_here=not remote,
    )


def device_workload(teacher: str, student: str, config: DistillConfig, device: str) -> Workload:
    """The workload on this machine's `device`: its precision and its bitsandbytes."""
    precision = device_precision(device)
    return workload(
        teacher,
        student,
        config,
        weight_bytes=4.0 if precision.name == "fp32" else 2.0,
        nf4_possible=device.startswith("cuda") and cuda_4bit_available(),
    )


def plan_memory(
    teacher: str, student: str, config: DistillConfig, device: str, capacity: float
) -> tuple[DistillConfig, str, Estimate]:
    """The config to train with and one line saying the plan.

    Fits: unchanged. Does not fit: the largest smaller batch that does, with gradient
    accumulation raised to keep the effective batch. Nothing fits: MemoryPlanError.
    """
    work = device_workload(teacher, student, config, device)
    first = estimate(work, capacity)
    where = f"{first.peak / GIB:.1f} GiB of {capacity / GIB:.1f} GiB on {device}"
    if first.fits:
        return (
            config,
            f"memory plan: {where}, batch {_batch(config, work)} × {work.grad_accum}",
            first,
        )
    fitted = fit_batch(work, capacity)
    if fitted is None:
        raise MemoryPlanError(
            f"{teacher} → {student} does not fit {device} ({capacity / GIB:.1f} GiB) even at "
            f"batch 1:\n{estimate(replace(work, batch=1), capacity).table()}\n"
            "  use a smaller max_length or teacher_batch_size, 4-bit loading "
            "(pip install bitsandbytes on CUDA), gradient_checkpointing, or a larger device"
        )
    chosen = estimate(fitted, capacity)
    adjusted = replace(
        config,
        per_device_batch_size=fitted.batch,
        batch_tokens=None if config.batch_tokens is None else fitted.batch * fitted.max_length,
        grad_accum=fitted.grad_accum,
        teacher_batch_size=fitted.teacher_batch,
    )
    line = (
        f"memory plan: batch {_batch(config, work)} needs {where}; training with batch "
        f"{_batch(adjusted, fitted)} × accumulation {fitted.grad_accum} (the same effective "
        f"batch), teacher signals {fitted.teacher_batch} records at a time: "
        f"{chosen.peak / GIB:.1f} GiB"
    )
    return adjusted, line, chosen


def _batch(config: DistillConfig, work: Workload) -> str:
    """A training batch as the config states it: a record count, or a token budget."""
    if config.batch_tokens is None:
        return str(work.batch)
    return f"{config.batch_tokens} tokens"
