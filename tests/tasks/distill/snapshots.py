"""Snapshot helpers for distillation tests: the built-in training tasks saved as DatasetDicts."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict

from tasks.sampledata import training_tasks


def seed_records(n: int, offset: int = 0) -> list[list[dict[str, str]]]:
    """`n` training tasks as user/assistant messages (never benchmark tasks)."""
    tasks = training_tasks()[offset : offset + n]
    if len(tasks) < n:
        raise ValueError(f"only {len(tasks)} training tasks from offset {offset}, asked for {n}")
    return [
        [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": t.answer}]
        for t in tasks
    ]


def save_snapshot(path: Path, train: list, validation: list, test: list | None = None) -> Path:
    """A DatasetDict with train/validation/test splits and a `messages` column."""
    splits = {"train": train, "validation": validation, "test": test or validation}
    DatasetDict({k: Dataset.from_dict({"messages": v}) for k, v in splits.items()}).save_to_disk(
        str(path)
    )
    return path
