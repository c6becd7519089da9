"""Evaluation sets: the fixed benchmark from the sample data, its cache, snapshot test splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from tasks.evaluate.sets import (
    cache_fixed_benchmark,
    conversation,
    eval_set_paths,
    fixed_benchmark_set,
    load_eval_set,
    snapshot_set_name,
)
from tests.tasks.evaluate.conftest import QA, save_snapshot


def _rec(i: int, instruction: str, context: str, response: str, source: str) -> dict:
    return {
        "id": i,
        "instruction": instruction,
        "context": context,
        "response": response,
        "source": source,
        "source_id": f"u{i}",
    }


def _records(path: Path) -> Path:
    recs = [
        _rec(0, "Fix the grammar.", "he go home", "He goes home.", "user_oriented_instructions"),
        _rec(1, "Train on me.", "", "No.", "seed_tasks"),
        _rec(2, "Name a color.", "", "Blue.", "user_oriented_instructions"),
    ]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return path


def test_fixed_set_from_a_self_instruct_file_keeps_only_held_out_records(tmp_path: Path) -> None:
    data = fixed_benchmark_set(_records(tmp_path / "records.jsonl"))
    assert data["prompt"] == ["Fix the grammar.\n\nhe go home", "Name a color."]
    assert data[0]["target"] == "He goes home."
    prompt, answer = conversation(data[0])
    assert prompt == [{"role": "user", "content": "Fix the grammar.\n\nhe go home"}]
    assert answer == "He goes home."
    assert len(fixed_benchmark_set(tmp_path / "records.jsonl", limit=1)) == 1


def test_fixed_set_found_through_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLERY_SAMPLE_DATA", str(_records(tmp_path / "records.jsonl")))
    assert len(fixed_benchmark_set()) == 2
    monkeypatch.setenv("DISTILLERY_SAMPLE_DATA", str(tmp_path / "nowhere.jsonl"))
    with pytest.raises(FileNotFoundError, match="DISTILLERY_SAMPLE_DATA"):
        fixed_benchmark_set()


def test_builtin_benchmark_mixes_checkable_and_open_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLERY_SAMPLE_DATA", raising=False)
    data = fixed_benchmark_set(limit=30)
    assert len(data) == 30 and all(data["target"])
    assert 0 < sum(data["checkable"]) < 30  # exact-match tasks beside open-ended ones
    assert len(set(data["category"])) >= 8  # a short prefix still covers the kinds of task


def test_cached_copy_is_reused(tmp_path: Path) -> None:
    src = _records(tmp_path / "records.jsonl")
    cached = cache_fixed_benchmark(tmp_path / "cache", source=src)
    assert cache_fixed_benchmark(tmp_path / "cache", source=src) == cached
    assert load_eval_set(cached)["target"] == ["He goes home.", "Blue."]


def test_snapshot_test_split_and_set_names(tmp_path: Path, snapshot_dir: Path) -> None:
    assert len(load_eval_set(snapshot_dir)) == 6
    with pytest.raises(ValueError, match="no 'nope' split"):
        load_eval_set(snapshot_dir, split="nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_eval_set(tmp_path / "missing")
    Dataset.from_list([{"x": 1}]).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="'messages' or 'prompt'"):
        load_eval_set(tmp_path / "bad")
    fixed = cache_fixed_benchmark(tmp_path / "fixed", source=_records(tmp_path / "r.jsonl"))
    # A snapshot's folder and its test split folder are one set with one key: given twice, it
    # is evaluated once (earlier splits are passed as <snapshot>/test).
    assert snapshot_set_name(snapshot_dir) == "test:snap-new"
    assert snapshot_set_name(snapshot_dir / "test") == "test:snap-new"
    sets = eval_set_paths(snapshot_dir, [str(snapshot_dir / "test")], fixed)
    assert list(sets) == ["test:snap-new", "fixed"]
    other = save_snapshot(tmp_path / "snap-old", QA[6:], "old")
    sets = eval_set_paths(snapshot_dir, [str(other / "test")], fixed)
    assert list(sets) == ["test:snap-new", "test:snap-old", "fixed"]


def test_empty_test_splits(tmp_path: Path, snapshot_dir: Path) -> None:
    empty = save_snapshot(tmp_path / "snap-empty", [], "e")
    fixed = cache_fixed_benchmark(tmp_path / "fixed", source=_records(tmp_path / "r.jsonl"))
    # An earlier snapshot with an empty test split is left out, not an error.
    assert list(eval_set_paths(snapshot_dir, [str(empty)], fixed)) == ["test:snap-new", "fixed"]
    with pytest.raises(ValueError, match="empty test split: nothing to gate on"):
        eval_set_paths(empty, [], fixed)
