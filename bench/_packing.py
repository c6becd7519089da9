"""bench/distill.py (g): KD training on records of real lengths: padded, by length, packed,
and filled to a token budget."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import torch
from _generation import emit
from _timing import StepTimer
from datasets import Dataset

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

    @property
    def packing(self) -> PackingPolicy:
        """The wrapped collator's, which the trainer's token budget counts slots by."""
        return self.inner.packing

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.inner(examples)
        self.slots += batch["input_ids"].numel()
        return batch


def _epoch(
    student: Any,
    tok: Any,
    data: Dataset,
    args: Any,
    device: str,
    batching: Batching,
    batch_tokens: int | None = None,
) -> dict[str, float]:
    """One pass over `data`: seconds, steps, token slots fed, final training loss."""
    args = dataclasses.replace(
        args, train_sampling_strategy="group_by_length" if batching == "by_length" else "random"
    )
    if batch_tokens is not None:  # as many steps as the budget's batches: one whole epoch
        args = dataclasses.replace(args, max_steps=-1, num_train_epochs=1.0)
    policy = PackingPolicy.for_model(batching, student)
    collator = CountingCollator(KDCollator(tok.pad_token_id, policy))
    timer = StepTimer(device)
    trainer = DistillTrainer(
        model=student,
        args=args,
        train_dataset=data,
        processing_class=tok,
        data_collator=collator,
        callbacks=[timer],
        kd=KDSettings(alpha=0.5, temperature=2.0, top_k=16),
        batch_tokens=batch_tokens,
    )
    loss = trainer.train().training_loss
    return {
        "seconds": sum(timer.times),
        "steps": len(timer.times),
        "slots": collator.slots,
        "loss": loss,
    }


def packing(student: Any, tok: Any, data: Dataset, args: Any, device: str) -> None:
    """(g) KD training tokens/s with cached top-k: padded (before), by_length, packed, auto,
    and auto / by_length batches filled to a token budget.

    Each variant trains one epoch from the same adapter state: the student's LoRA weights are
    restored between runs so every variant does the same work. The budget is the padded
    batches' mean token slots per step, padding included: the same memory per step, with
    real tokens where padding was.
    """
    real = sum(len(r) for r in data["input_ids"])
    start = {k: v.detach().clone() for k, v in student.state_dict().items() if "lora_" in k}
    # Warm-up (allocator, lazy initialisation), so the first variant measured pays no more.
    warm = data.select(range(min(len(data), 2 * args.per_device_train_batch_size)))
    _epoch(student, tok, warm, dataclasses.replace(args, max_steps=2), device, "padded")
    student.load_state_dict(start, strict=False)
    runs = {"padded": _epoch(student, tok, data, args, device, "padded")}
    budget = round(runs["padded"]["slots"] / runs["padded"]["steps"])
    variants: list[tuple[str, Batching, int | None]] = [
        ("by_length", "by_length", None),
        ("packed", "packed", None),
        ("auto", "auto", None),
        ("auto+tokens", "auto", budget),
        ("by_length+tokens", "by_length", budget),
    ]
    for name, batching, tokens in variants:
        student.load_state_dict(start, strict=False)
        runs[name] = _epoch(student, tok, data, args, device, batching, tokens)
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
        steps={k: r["steps"] for k, r in runs.items()},
        batch_tokens=budget,
        records=len(data),
        mean_tokens=real / len(data),
    )
