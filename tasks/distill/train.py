"""LoRA training of the student on prepared data (QLoRA on CUDA), resumable, with outputs."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict, load_from_disk
from peft import get_peft_model
from transformers import PrinterCallback, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig

from storage.layout import layout
from tasks.distill.config import DistillConfig
from tasks.distill.packing import PackingPolicy
from tasks.distill.signals import load_vocab_map
from tasks.distill.trainer import TEACHER_COLUMNS, DistillTrainer, KDCollator, KDSettings
from tasks.models.adapters import lora_config
from tasks.models.load import load_model_and_tokenizer
from tasks.models.precision import device_precision
from tasks.models.presets import get_preset
from tasks.progress import TrainingBar

log = logging.getLogger(__name__)


def warm_start(config: DistillConfig) -> tuple[Path | None, str]:
    """The adapter to continue from, and one line on it for the log and the run record.

    A `lora_r` or `lora_alpha` set in the config that differs from the warm-start adapter's
    is a request for another adapter shape: training starts fresh and says so. It was
    silently ignored before, so every cycle after the first kept the first rank.
    """
    adapter = config.warm_start_adapter
    if adapter is None:
        return None, "fresh adapter (no stable version to continue)"
    shape = json.loads((Path(adapter) / "adapter_config.json").read_text())
    asked = {"r": config.lora_r, "lora_alpha": config.lora_alpha}
    changed = [
        f"{k} {shape.get(k)} -> {v}"
        for k, v in asked.items()
        if v is not None and v != shape.get(k)
    ]
    if changed:
        return None, f"fresh adapter: the config changes the stable adapter's {', '.join(changed)}"
    # Named by its key in the store: the note goes into the run's row, read on every host.
    return Path(adapter), f"continues {layout().stored(adapter)}"


def load_student(student: str, config: DistillConfig, device: str) -> tuple[Any, Any, str]:
    """The student with a trainable LoRA adapter: warm-started (verified) or fresh, and why."""
    adapter, note = warm_start(config)
    log.info("%s: %s", student, note)
    model, tok = load_model_and_tokenizer(
        student,
        adapter_dir=adapter,
        device=device,
        for_training=True,
        quantize_4bit=config.quantize_4bit,
    )
    if adapter is None:
        cfg = lora_config(get_preset(student), r=config.lora_r, lora_alpha=config.lora_alpha)
        model = get_peft_model(model, cfg)
    return model, tok, note


def sft_args(config: DistillConfig, student: str, ckpt_dir: Path, device: str) -> SFTConfig:
    """TRL/Trainer arguments from the run config and the student preset."""
    preset = get_preset(student)
    on_cuda = device.startswith("cuda")
    precision = device_precision(device)
    return SFTConfig(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=config.per_device_batch_size or preset.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size or preset.per_device_batch_size,
        gradient_accumulation_steps=config.grad_accum or preset.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        eval_strategy="no",
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        remove_unused_columns=False,  # the teacher columns must reach the collator
        dataset_kwargs={"skip_prepare_dataset": True},  # we tokenize and mask ourselves
        max_length=None,
        train_sampling_strategy="group_by_length" if config.batching == "by_length" else "random",
        bf16=precision.name == "bf16",  # by the card's capability, not emulated bf16
        fp16=precision.name == "fp16",  # a T4: Trainer's loss scaler on
        use_cpu=not on_cuda,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_num_workers=2 if on_cuda else 0,  # overlap batch assembly with the GPU
        disable_tqdm=True,  # tasks.progress.TrainingBar shows the steps instead
    )


def train_student(
    prepared_dir: Path,
    *,
    student: str,
    output_dir: Path,
    config: DistillConfig,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Train, resume from the last checkpoint if any, evaluate, save adapter/logs; metrics."""
    output_dir = Path(output_dir)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = load_from_disk(str(prepared_dir))
    assert isinstance(data, DatasetDict)
    model, tok, warm_note = load_student(student, config, device)
    ckpt_dir = output_dir / "checkpoints"
    kd = KDSettings(
        config.alpha,
        config.temperature,
        config.divergence,
        config.top_k,
        correction_alpha=config.correction_alpha,
    )
    if (aligned := load_vocab_map(prepared_dir)) is not None:  # cross-tokenizer KD
        kd.student_unshared, kd.matched_weight = aligned
    eval_data = data["validation"] if "validation" in data else None
    trainer = DistillTrainer(
        model=model,
        args=sft_args(config, student, ckpt_dir, device),
        train_dataset=_fast_teacher_columns(data["train"]),
        eval_dataset=eval_data,
        processing_class=tok,
        data_collator=KDCollator(tok.pad_token_id, PackingPolicy.for_model(config.batching, model)),
        kd=kd,
        batch_tokens=config.batch_tokens,
        callbacks=[*(callbacks or []), TrainingBar(f"training {student}")],
    )
    # Our bar shows loss and ETA; the trainer's printer would add a raw dict per logged step.
    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(ckpt_dir)) if config.resume and ckpt_dir.is_dir() else None
    if last:
        log.info("resuming from checkpoint %s", last)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "global_step": result.global_step,
        "train_seconds": time.perf_counter() - started,
        "resumed_from": Path(last).name if last else None,
        "warm_start": warm_note,
        "train_records": len(data["train"]),
        "target_tokens": sum(sum(1 for x in r[1:] if x != -100) for r in data["train"]["labels"]),
    }
    if eval_data is not None and len(eval_data):
        eval_loss = trainer.evaluate()["eval_loss"]
        metrics.update(eval_loss=eval_loss, eval_perplexity=math.exp(min(eval_loss, 50.0)))
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # rank 0 only; PEFT models save just the adapter
    if trainer.is_world_process_zero():
        if config.merge:
            metrics["merged_dir"] = str(merge_adapter(student, adapter_dir, output_dir / "merged"))
        history = json.dumps(trainer.state.log_history, indent=2)
        (output_dir / "log_history.json").write_text(history)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _fast_teacher_columns(train: Any) -> Any:
    """Teacher arrays straight from Arrow as tensors: building them from lists costs ms a step."""
    columns = [c for c in TEACHER_COLUMNS if c in train.column_names]
    if not columns:
        return train
    return train.with_format("torch", columns=columns, output_all_columns=True)


def merge_adapter(student: str, adapter_dir: Path, out_dir: Path) -> Path:
    """Merge the adapter into a full-precision copy of the base (never into 4-bit weights)."""
    model, tok = load_model_and_tokenizer(
        student, adapter_dir=adapter_dir, device="cpu", quantize_4bit=False
    )
    merged = model.merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir
