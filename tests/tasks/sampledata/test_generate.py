"""The built-in sample tasks: deterministic, split without overlap, answers right."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from tasks.sampledata import (
    answer_match,
    benchmark_tasks,
    exact_match,
    load_tasks,
    normalize_answer,
    training_tasks,
)


@pytest.fixture(autouse=True)
def _builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLERY_SAMPLE_DATA", raising=False)


def test_training_and_benchmark_never_share_a_prompt() -> None:
    train, bench = training_tasks(), benchmark_tasks()
    assert len(train) > 300 and len(bench) > 40
    assert not {t.prompt for t in train} & {t.prompt for t in bench}
    assert len({t.id for t in train + bench}) == len(train) + len(bench)


def test_tasks_are_the_same_in_every_process() -> None:
    ids = [t.id for t in benchmark_tasks()]
    assert ids == [t.id for t in benchmark_tasks()]
    assert ids[:3] == [t.id for t in benchmark_tasks()[:3]]


def test_checkable_answers_are_right() -> None:
    checked = 0
    for task in training_tasks() + benchmark_tasks():
        if m := re.match(r"What is (\d+) (\+|minus|times) (\d+)\?", task.prompt):
            a, op, b = int(m[1]), m[2], int(m[3])
            assert int(task.answer) == {"+": a + b, "minus": a - b, "times": a * b}[op]
            checked += 1
        elif m := re.match(r"What day of the week is (.+)\? ", task.prompt):
            assert task.answer == datetime.strptime(m[1], "%d %B %Y").strftime("%A")
            checked += 1
        elif m := re.match(r"What date is (\d+) days after (\S+)\?", task.prompt):
            start = date.fromisoformat(m[2])
            assert (date.fromisoformat(task.answer) - start).days == int(m[1])
            checked += 1
        elif m := re.match(r"Spell the word '(\w+)' backwards", task.prompt):
            assert task.answer == m[1][::-1]
            checked += 1
    assert checked > 150


def test_both_kinds_of_task_on_both_sides() -> None:
    for tasks in (training_tasks(), benchmark_tasks()):
        kinds = {t.checkable for t in tasks}
        assert kinds == {True, False}
        assert "code" in {t.category for t in tasks}


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("Tokyo.", "Tokyo", True),
        ("  tokyo\nIt is a big city.", "Tokyo", True),
        ("The capital is Tokyo", "Tokyo", False),
        ("111", "112", False),
        ("", "1", False),
    ],
)
def test_exact_match(prediction: str, answer: str, expected: bool) -> None:
    assert exact_match(prediction, answer) is expected


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("The capital of Japan is Tokyo.", "Tokyo", True),
        ("62 + 49 = 111", "111", True),
        ("It is 1111.", "111", False),
        ("About 11.1 or so", "11", False),
        ("2, 5, 9", "2, 5, 9", True),
        ("Kyoto\nTokyo", "Tokyo", False),  # only the first line counts
    ],
)
def test_answer_match(prediction: str, answer: str, expected: bool) -> None:
    assert answer_match(prediction, answer) is expected


def test_normalize_answer_keeps_inner_punctuation() -> None:
    assert normalize_answer(" 2, 5, 9. ") == "2, 5, 9"


def test_a_file_replaces_the_builtin_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    rows = [
        {"prompt": "2+2?", "answer": "4", "checkable": True, "split": "benchmark"},
        {"prompt": "Say hi.", "answer": "Hi!", "category": "chat", "split": "train"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert [t.prompt for t in benchmark_tasks(path)] == ["2+2?"]
    assert [(t.category, t.checkable) for t in training_tasks(path)] == [("chat", False)]


def test_bad_files_are_named_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_tasks(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "no answer"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a sample task"):
        load_tasks(bad)
