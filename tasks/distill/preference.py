"""Optional stage after KD: users' ratings and corrections as preference learning, through TRL.

KTO (TRL's `KTOTrainer`) learns from unpaired thumbs: well-rated answers and corrections are
desirable, low-rated uncorrected answers (the snapshot's negatives) undesirable. DPO (TRL's
`DPOTrainer`) learns from pairs: a user's correction preferred over the answer it replaced.
The stage continues the KD adapter; its reference model is the KD student itself (not the
base), so the KL anchor is what distillation produced. Its adapter is the cycle's candidate
and goes through the same gate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from tasks.distill.config import DistillConfig
from tasks.prepare.store import load_negatives, load_snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreferenceData:
    """KTO rows (prompt, completion, label) and DPO rows (prompt, chosen, rejected)."""

    kto: Dataset
    dpo: Dataset


def _turn(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def preference_data(
    snapshot: Path, *, good_rating: int = 4, split: str = "train"
) -> PreferenceData:
    """Preference rows from a prepared snapshot's training split and its negatives."""
    rows = load_snapshot(snapshot)[split]
    kto: dict[str, list[Any]] = {"prompt": [], "completion": [], "label": []}
    dpo: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": []}
    columns = set(rows.column_names)
    for row in rows:
        prompt, answer = row["messages"][:-1], row["messages"][-1]["content"]
        corrected = row.get("target_source") == "correction"
        if corrected or (row.get("rating") or 0) >= good_rating:
            kto["prompt"].append(prompt)
            kto["completion"].append(_turn(answer))
            kto["label"].append(True)
        if corrected and "corrected_response" in columns and row["corrected_response"]:
            dpo["prompt"].append(prompt)
            dpo["chosen"].append(_turn(answer))
            dpo["rejected"].append(_turn(row["corrected_response"]))
    negatives = Path(snapshot) / "negatives"
    if negatives.is_dir():
        for row in load_negatives(snapshot):
            if row["split"] == split:
                kto["prompt"].append(row["messages"][:-1])
                kto["completion"].append(_turn(row["rejected"]))
                kto["label"].append(False)
    return PreferenceData(Dataset.from_dict(kto), Dataset.from_dict(dpo))


def why_not(kind: str, data: PreferenceData) -> str | None:
    """The reason the stage cannot run on this data, None when it can."""
    if kind == "kto":
        labels = data.kto["label"] if len(data.kto) else []
        good, bad = sum(labels), len(labels) - sum(labels)
        if not good or not bad:
            return f"KTO needs good and bad answers; have {good} good, {bad} bad"
    elif kind == "dpo" and len(data.dpo) == 0:
        return "DPO needs corrections of recorded answers; the snapshot has none"
    return None


def preference_stage(
    snapshot: Path, kd_adapter: Path, *, student: str, output_dir: Path, config: DistillConfig
) -> dict[str, Any]:
    """Continue the KD adapter with KTO or DPO; {"adapter_dir", ...} or {"skipped": reason}."""
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from tasks.models.load import load_model_and_tokenizer

    kind = config.preference
    data = preference_data(snapshot)
    if reason := why_not(kind, data):
        log.info("preference stage skipped: %s", reason)
        return {"skipped": reason}
    device = config.device or "cpu"
    model, tok = load_model_and_tokenizer(
        student, adapter_dir=kd_adapter, device=device, for_training=True
    )
    reference, _ = load_model_and_tokenizer(student, adapter_dir=kd_adapter, device=device)
    if isinstance(reference, PeftModel):  # a frozen copy of the KD student is the anchor
        reference = reference.merge_and_unload()
    common: dict[str, Any] = {
        "output_dir": str(output_dir / "checkpoints"),
        "per_device_train_batch_size": 4,
        "max_steps": config.preference_steps,
        "learning_rate": config.preference_learning_rate,
        "beta": config.preference_beta,
        "save_strategy": "no",
        "logging_steps": 1,
        "report_to": [],
        "use_cpu": not device.startswith("cuda"),
        "disable_tqdm": True,
        "seed": config.seed,
    }
    if kind == "kto":
        trainer: Any = KTOTrainer(
            model=model,
            ref_model=reference,
            args=KTOConfig(**common),
            train_dataset=data.kto,
            processing_class=tok,
        )
    else:
        trainer = DPOTrainer(
            model=model,
            ref_model=reference,
            args=DPOConfig(**common),
            train_dataset=data.dpo,
            processing_class=tok,
        )
    started = time.perf_counter()
    result = trainer.train()
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    return {
        "kind": kind,
        "adapter_dir": str(adapter_dir),
        "train_loss": result.training_loss,
        "global_step": result.global_step,
        "train_seconds": time.perf_counter() - started,
        "examples": len(data.kto if kind == "kto" else data.dpo),
    }
