"""Snapshot helpers for distillation tests: seed-task records saved as DatasetDicts."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset, DatasetDict

SEED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "self_instruct"


def seed_records(n: int, offset: int = 0) -> list[list[dict[str, str]]]:
    """`n` seed-task records as user/assistant messages (training data only, never evaluation)."""
    path = SEED_DATA / "records.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:  # e.g. a GPU machine that got the repo without ../shared: synthetic stand-ins
        rows = _synthetic_rows(offset + n)
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


def _synthetic_rows(n: int) -> list[dict[str, str]]:
    """Deterministic instruction/response pairs from the tiny tokenizer's corpus."""
    from tasks.models.tiny import _CORPUS

    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    return [
        {
            "source": "seed_tasks",
            "instruction": lines[i % len(lines)],
            "context": "" if i % 3 else lines[(i + 7) % len(lines)],
            "response": " ".join(lines[(i + 1 + j) % len(lines)] for j in range(1 + i % 2)),
        }
        for i in range(n)
    ]
