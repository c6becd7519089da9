"""Snapshot helpers for distillation tests: seed-task records saved as DatasetDicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

SEED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "self_instruct"


def seed_records(n: int, offset: int = 0) -> list[list[dict[str, str]]]:
    """`n` seed-task records as user/assistant messages (training data only, never evaluation)."""
    path = SEED_DATA / "records.jsonl"
    if not path.is_file():
        pytest.skip(f"sample data missing at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["source"] == "seed_tasks"][offset : offset + n]
    out = []
    for r in rows:
        user = r["instruction"] + (f"\n\n{r['context']}" if r["context"] else "")
        out.append(
            [{"role": "user", "content": user}, {"role": "assistant", "content": r["response"]}]
        )
    return out


def save_snapshot(path: Path, train: list, validation: list, test: list | None = None) -> Path:
    """A DatasetDict with train/validation/test splits and a `messages` column."""
    splits = {"train": train, "validation": validation, "test": test or validation}
    DatasetDict({k: Dataset.from_dict({"messages": v}) for k, v in splits.items()}).save_to_disk(
        str(path)
    )
    return path
