"""Snapshots built from the self-instruct seed tasks, and an isolated data dir."""

from __future__ import annotations

import json
from collections.abc import Callable
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


@pytest.fixture(scope="session")
def distill_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir per session: tiny presets materialize once."""
    return tmp_path_factory.mktemp("distill-data")


@pytest.fixture(autouse=True)
def _data_dir(distill_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(distill_data_dir))
    return distill_data_dir


@pytest.fixture
def make_snapshot(tmp_path: Path) -> Callable[..., Path]:
    """Build a snapshot of `n_train` seed records (from `offset`) and 4 validation records."""

    def make(name: str = "snap", n_train: int = 12, offset: int = 0, n_val: int = 4) -> Path:
        val = seed_records(n_val, offset=150)
        return save_snapshot(tmp_path / name, seed_records(n_train, offset), val)

    return make
