"""Snapshot records: validation, replay sampling and assistant-only labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.distill.data import check_messages, record_hash, tokenize_record, training_records
from tasks.models.tiny import build_tiny_tokenizer
from tests.tasks.distill.snapshots import save_snapshot, seed_records


def test_labels_cover_only_the_answer() -> None:
    tok = build_tiny_tokenizer("a")
    messages = seed_records(1)[0]
    row = tokenize_record(tok, messages, max_length=4096)
    answer = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
    assert tok.decode(answer).startswith(messages[1]["content"])
    assert row["labels"][0] == -100
    assert tokenize_record(tok, messages, max_length=5) is None  # the prompt alone fills it


def test_bad_records_are_named() -> None:
    with pytest.raises(ValueError, match="user then an assistant"):
        check_messages([{"role": "assistant", "content": "hi"}])


def test_replay_adds_a_seeded_sample_of_older_records(tmp_path: Path) -> None:
    new = save_snapshot(tmp_path / "new", seed_records(10), seed_records(1, 150))
    old = save_snapshot(tmp_path / "old", seed_records(30, offset=5), seed_records(1, 150))
    got = training_records(new, "train", replay=[old], replay_fraction=0.5, seed=3)
    again = training_records(new, "train", replay=[old], replay_fraction=0.5, seed=3)
    assert got == again and len(got) == 15
    hashes = [record_hash(r.messages) for r in got]
    assert len(set(hashes)) == 15  # the 5 records both snapshots share are not replayed twice
    assert {record_hash(m) for m in seed_records(10)} <= set(hashes)
