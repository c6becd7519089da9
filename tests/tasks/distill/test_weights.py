"""Record weights from prepare train as deterministic copies (tasks/distill/data.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

from tasks.distill.config import DistillConfig
from tasks.distill.data import record_hash, training_records
from tasks.distill.engine import prepare_signals
from tests.tasks.distill.snapshots import save_snapshot, seed_records


def _snapshot(path: Path, train: list, weights: list[float]) -> Path:
    val = seed_records(2, offset=150)
    DatasetDict(
        {
            "train": Dataset.from_dict({"messages": train, "weight": weights}),
            "validation": Dataset.from_dict({"messages": val, "weight": [1.0] * len(val)}),
        }
    ).save_to_disk(str(path))
    return path


def _copies(records: list) -> Counter[str]:
    return Counter(record_hash(r.messages) for r in records)


def test_weights_become_copies_the_same_way_every_run(tmp_path: Path) -> None:
    train = seed_records(300)
    weights = [1.0] * 50 + [2.0] * 50 + [1.5] * 200
    snap = _snapshot(tmp_path / "snap", train, weights)
    got = training_records(snap, "train", replay=[], replay_fraction=0.0, seed=0)
    copies = _copies(got)
    assert [copies[record_hash(m)] for m in train[:100]] == [1] * 50 + [2] * 50
    halves = [copies[record_hash(m)] for m in train[100:]]
    assert set(halves) == {1, 2} and 70 <= halves.count(2) <= 130  # 1.5 each in expectation
    assert [r.weight for r in got[:1]] == [1.0] and got[-1].weight == 1.5
    again = training_records(snap, "train", replay=[], replay_fraction=0.0, seed=0)
    assert again == got
    other = _copies(training_records(snap, "train", replay=[], replay_fraction=0.0, seed=1))
    assert other != copies and sum(other.values()) - 300 in range(120, 181)


def test_snapshots_without_weights_and_replayed_records_weigh_as_stored(tmp_path: Path) -> None:
    plain = save_snapshot(tmp_path / "old", seed_records(20, offset=40), seed_records(1, 150))
    new = _snapshot(tmp_path / "new", seed_records(4), [2.0, 1.0, 1.0, 1.0])
    got = training_records(new, "train", replay=[plain], replay_fraction=1.0, seed=0)
    copies = _copies(got)
    assert copies[record_hash(seed_records(4)[0])] == 2
    assert len(got) == 5 + 4 and set(copies.values()) == {1, 2}  # 4 replayed, once each
    assert [r.weight for r in got if r.messages in seed_records(20, offset=40)] == [1.0] * 4


def test_copies_go_through_the_teacher_once(tmp_path: Path) -> None:
    train = seed_records(3)
    snap = _snapshot(tmp_path / "snap", train, [2.0, 1.0, 1.0])
    cfg = DistillConfig(max_length=256, gen_max_new_tokens=8)
    signals = prepare_signals(
        snap,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student-b",
        strategy="sequence",
        config=cfg,
        work_dir=tmp_path / "w",
        cache_root=tmp_path,
    )
    assert signals["teacher_cache"]["computed"] == 3  # three distinct prompts
    data = load_from_disk(signals["prepared_dir"])["train"]
    assert len(data) == 4 and len(set(data["record_hash"])) == 3
