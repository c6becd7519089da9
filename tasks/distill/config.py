"""Hyperparameters of one distillation run, and what it returns."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from pydantic.dataclasses import dataclass as config_dataclass

from tasks.config_base import STRICT
from tasks.distill.packing import Batching
from tasks.results import StageResult

Strategy = Literal["auto", "logit", "xtok", "sequence"]


@config_dataclass(config=STRICT)
class DistillConfig:
    """How to distill: strategy, loss, teacher signals, LoRA training and outputs."""

    # auto: logit KD for identical tokenizers, cross-tokenizer logit KD ("xtok") otherwise;
    # "logit"/"xtok"/"sequence" force one (logit on different vocabularies is refused).
    strategy: Strategy = "auto"
    alpha: float = 0.5  # weight of cross-entropy; 1 - alpha goes to the divergence
    # CE weight on records whose answer is a user's correction. 1.0: a correction is ground
    # truth and trains alone (no teacher term; sequence KD never replaces it either); lower
    # values let the teacher's distribution on the correction's tokens regularise it.
    correction_alpha: float = 1.0
    # Optional stage after KD (tasks/distill/preference.py): KTO on good/bad ratings or DPO on
    # correction ≻ answer. Off by default: not yet shown to help on the project's own data.
    preference: Literal["off", "kto", "dpo"] = "off"
    preference_steps: int = 20
    preference_beta: float = 0.1
    preference_learning_rate: float = 5e-5
    temperature: float = 2.0
    divergence: Literal["forward_kl", "jsd"] = "forward_kl"
    top_k: int = 16
    max_length: int | None = None  # tokens per record; None = the student preset's max_seq_len
    gen_max_new_tokens: int = 128
    gen_batch_size: int = 8
    teacher_batch_size: int = 8
    learning_rate: float = 2e-4
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_batch_size: int | None = None  # None = preset
    grad_accum: int | None = None  # None = preset
    lora_r: int | None = None  # None = preset
    lora_alpha: int | None = None
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 5
    seed: int = 0
    max_train_records: int | None = None
    warm_start_adapter: Path | None = None
    replay_snapshots: list[Path] = field(default_factory=list)
    replay_fraction: float = 0.2  # replayed records as a share of the new training records
    resume: bool = True  # continue from the last checkpoint in output_dir if one exists
    merge: bool = False  # also write the merged full model
    device: str | None = None
    quantize_4bit: bool | None = None  # None = 4-bit when CUDA + bitsandbytes and preset allows
    gradient_checkpointing: bool = False
    # Training batches: "auto" packs a batch into one padding-free row when that costs less
    # than padding it (always with flash attention); "packed" / "padded" force one layout,
    # with the same loss and gradients. "by_length" pads batches of records of similar length:
    # less padding, but other records train together (tasks/distill/packing.py).
    batching: Batching = "auto"
    # Token slots per training batch (padding counted unless the batch is packed) instead of a
    # fixed record count: short records then train many at a time, long ones few, and every
    # step does about the same work. None: per_device_batch_size records a batch. A GPU wants
    # about 32k tokens per optimizer step (batch_tokens × grad_accum).
    batch_tokens: int | None = None
    train_split: str = "train"
    eval_split: str = "validation"

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if not 0.0 <= self.correction_alpha <= 1.0:
            raise ValueError(f"correction_alpha must be within [0, 1], got {self.correction_alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise ValueError(f"batch_tokens must be at least 1 (or null), got {self.batch_tokens}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (paths as strings)."""
        out = dataclasses.asdict(self)
        out["warm_start_adapter"] = (
            str(self.warm_start_adapter) if self.warm_start_adapter else None
        )
        out["replay_snapshots"] = [str(p) for p in self.replay_snapshots]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillConfig:
        """The inverse of to_dict; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown DistillConfig fields: {unknown}")
        return cls(**data)


class DistillResult(StageResult):
    """What a finished distillation run produced (the training stage's result)."""

    run_id: int | None
    """Id of the TrainingRun row; None when no database recorded the run."""
    output_dir: Path
    """Folder of the run: checkpoints, prepared data, metrics.json."""
    adapter_dir: Path
    """The LoRA adapter the gate judges (the preference stage's when that ran)."""
    strategy: str
    """Distillation strategy used: logit, xtok or sequence."""
    metrics: dict[str, Any]
    """Training metrics as stored on the TrainingRun row (a JSON blob)."""

    @property
    def teacher_cache(self) -> dict[str, float] | None:
        """Teacher-cache counts (hits, misses, computed, hit_rate) and seconds, if recorded."""
        return self.metrics.get("teacher_cache")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return self.model_dump(mode="json")
