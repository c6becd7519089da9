"""bench/distill.py (g): KD training on records of real lengths: padded, by length, packed."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import torch
from _generation import emit, sync
from datasets import Dataset
from transformers import TrainerCallback

from tasks.distill.data import tokenize_record
from tasks.distill.packing import Batching, PackingPolicy
from tasks.distill.trainer import DistillTrainer, KDCollator, KDSettings
from tasks.sampledata import training_tasks


def task_length_records(tok: Any, vocab: int, n: int, seed: int) -> Dataset:
    """Records with the token lengths of the demo's training tasks (random ids, same masks).

    The lengths are what a cycle trains on: each task's prompt and reference answer in the
    tokenizer's chat template. Random ids keep the figure the same for every preset.
    """
    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {"input_ids": [], "labels": [], "record_hash": []}
    for i, task in enumerate(training_tasks()[:n]):
        messages = [
            {"role": "user", "content": task.prompt},
            {"role": "assistant", "content": task.answer},
        ]
        row = tokenize_record(tok, messages, max_length=4096)
        if row is None:
            continue
        ids = [rng.randrange(3, vocab) for _ in row["input_ids"]]
        rows["input_ids"].append(ids)
        rows["labels"].append(
            [x if y != -100 else -100 for x, y in zip(ids, row["labels"], strict=True)]
        )
        rows["record_hash"].append(f"{seed:04d}{i:060d}")
    return Dataset.from_dict(rows)


@dataclasses.dataclass
class CountingCollator:
    """KDCollator that counts the token slots it hands to the model (padding included)."""

    inner: KDCollator
    slots: int = 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.inner(examples)
        self.slots += batch["input_ids"].numel()
        return batch


class EpochTimer(TrainerCallback):
    """Summed wall-clock time of the optimizer steps."""

    def __init__(self, device: str) -> None:
        self.device, self.total, self._t = device, 0.0, 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync(self.device)
        self._t = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync(self.device)
        self.total += time.perf_counter() - self._t


def _epoch(
    student: Any,
    tok: Any,
    data: Dataset,
    args: Any,
    device: str,
    batching: Batching,
) -> dict[str, float]:
    """One pass over `data`: seconds, token slots fed, final training loss."""
    args = dataclasses.replace(
        args, train_sampling_strategy="group_by_length" if batching == "by_length" else "random"
    )
    policy = PackingPolicy.for_model(batching, student)
    collator = CountingCollator(KDCollator(tok.pad_token_id, policy))
    timer = EpochTimer(device)
    trainer = DistillTrainer(
        model=student,
        args=args,
        train_dataset=data,
        processing_class=tok,
        data_collator=collator,
        callbacks=[timer],
        kd=KDSettings(alpha=0.5, temperature=2.0, top_k=16),
    )
    loss = trainer.train().training_loss
    return {"seconds": timer.total, "slots": collator.slots, "loss": loss}


def packing(student: Any, tok: Any, data: Dataset, args: Any, device: str) -> None:
    """(g) KD training tokens/s with cached top-k: padded (before), by_length, packed, auto.

    Each variant trains one epoch from the same adapter state: the student's LoRA weights are
    restored between runs so every variant does the same work.
    """
    real = sum(len(r) for r in data["input_ids"])
    start = {k: v.detach().clone() for k, v in student.state_dict().items() if "lora_" in k}
    # Warm-up (allocator, lazy initialisation), so the first variant measured pays no more.
    warm = data.select(range(min(len(data), 2 * args.per_device_train_batch_size)))
    _epoch(student, tok, warm, dataclasses.replace(args, max_steps=2), device, "padded")
    runs = {}
    variants: list[Batching] = ["padded", "by_length", "packed", "auto"]
    for batching in variants:
        student.load_state_dict(start, strict=False)
        runs[batching] = _epoch(student, tok, data, args, device, batching)
    base = runs["padded"]
    emit(
        figure="g_auto_train_tokens_per_s",
        value=real / runs["auto"]["seconds"],
        baseline_padded=real / base["seconds"],
        ratio=base["seconds"] / runs["auto"]["seconds"],
        tokens_per_s={k: real / r["seconds"] for k, r in runs.items()},
        ratio_to_padded={k: base["seconds"] / r["seconds"] for k, r in runs.items()},
        padding_share={k: 1 - real / r["slots"] for k, r in runs.items()},
        train_loss={k: round(r["loss"], 4) for k, r in runs.items()},
        records=len(data),
        mean_tokens=real / len(data),
    )
