"""Fixtures for evaluation tests: tiny models, tiny snapshots, an isolated data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset, DatasetDict

QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Give three tips for staying healthy.", "Sleep well, eat fruit and walk every day."),
    ("Translate: The weather is nice today.", "Il fait beau aujourd'hui."),
    ("Write a Python function that adds two numbers.", "def add(a, b):\n    return a + b"),
    ("Name a red fruit.", "A strawberry is red."),
    ("Summarize: the cat sat on the mat all day.", "A cat sat on a mat."),
    ("Why is the sky blue?", "Air scatters blue light more than red light."),
    ("Suggest a name for a coffee shop.", "Bean There."),
]


def rows(pairs: list[tuple[str, str]], prefix: str) -> list[dict[str, Any]]:
    """Rows in the snapshot format: id, prompt, target, messages."""
    return [
        {
            "id": f"{prefix}-{i}",
            "prompt": p,
            "target": t,
            "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": t}],
        }
        for i, (p, t) in enumerate(pairs)
    ]


def save_snapshot(path: Path, test_pairs: list[tuple[str, str]], prefix: str) -> Path:
    """A DatasetDict with train/validation/test splits saved with save_to_disk."""
    train = Dataset.from_list(rows(QA, f"{prefix}-train"))
    test = Dataset.from_list(rows(test_pairs, prefix)) if test_pairs else train.select([])
    validation = Dataset.from_list(rows(QA[:2], f"{prefix}-val"))
    splits = DatasetDict({"train": train, "validation": validation, "test": test})
    # One shard per split, as tasks/prepare writes them: an empty split then loads back.
    splits.save_to_disk(str(path), num_shards=dict.fromkeys(splits, 1))
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Materialized presets and cached eval sets go to a temp dir, never the repo."""
    path = tmp_path_factory.mktemp("distillery-data")
    old = os.environ.get("DISTILLERY_DATA_DIR")
    os.environ["DISTILLERY_DATA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DISTILLERY_DATA_DIR", None)
    else:
        os.environ["DISTILLERY_DATA_DIR"] = old


@pytest.fixture(scope="session")
def tiny() -> tuple[Any, Any]:
    """A tiny random llama and its tokenizer (built from a config, no download)."""
    from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer("a")
    return build_tiny_model("llama", tokenizer, seed=0), tokenizer


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny snapshot whose test split holds six examples."""
    return save_snapshot(tmp_path_factory.mktemp("snap") / "snap-new", QA[:6], "new")
