"""The optional preference stage: KTO on ratings, DPO on corrections, on a prepared snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import Database
from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill
from tasks.distill.preference import preference_data, why_not
from tasks.prepare import PrepareConfig, build_snapshot
from tests.tasks.prepare.conftest import insert, make_row

FAST = {"max_steps": 2, "save_steps": 100, "per_device_batch_size": 4, "max_length": 96}


@pytest.fixture
def snapshot(sqlite_db: Database, tmp_path: Path) -> Path:
    """Good answers, low-rated ones (negatives) and corrected ones, all in the train split."""
    rows = [make_row(i) for i in range(6)]
    rows += [make_row(10 + i, rating=1, response=f"Wrong answer {i}.") for i in range(4)]
    rows += [make_row(20 + i, rating=2, correction=f"Corrected answer {i}.") for i in range(4)]
    insert(sqlite_db, rows)
    info = build_snapshot(
        sqlite_db,
        config=PrepareConfig(train_ratio=1.0, validation_ratio=0.0),
        artifact_root=tmp_path / "art",
    )
    return Path(info.path)


def test_ratings_and_corrections_become_preference_rows(snapshot: Path) -> None:
    data = preference_data(snapshot)
    assert data.kto["label"].count(True) == 10 and data.kto["label"].count(False) == 4
    assert len(data.dpo) == 4
    for row in data.dpo:  # the correction is chosen over the answer it replaced
        topic = row["prompt"][-1]["content"].split()[3]
        assert row["chosen"][0]["content"].startswith("Corrected answer")
        assert row["rejected"][0]["content"].startswith(f"Topic {topic} is interesting")
    assert why_not("kto", data) is None and why_not("dpo", data) is None


@pytest.mark.parametrize("kind", ["kto", "dpo"])
def test_preference_stage_continues_the_kd_adapter(snapshot: Path, tmp_path: Path, kind: str):
    cfg = DistillConfig(preference=kind, preference_steps=2, **FAST)
    res = distill(
        snapshot,
        teacher="tiny-llama-teacher",
        student="tiny-llama-student",
        output_dir=tmp_path / "out",
        config=cfg,
    )
    stage = res.metrics["preference"]
    assert stage["kind"] == kind and stage["global_step"] == 2
    assert res.adapter_dir == tmp_path / "out" / "preference" / "adapter"
    assert (res.adapter_dir / "adapter_model.safetensors").is_file()
