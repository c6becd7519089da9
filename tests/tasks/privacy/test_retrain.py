"""DISTILLERY_ERASURE_RETRAIN: a stable version trained on erased rows is not warm-started from."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import Database, get_database
from storage.models import Erasure
from storage.repo.snapshots import add_snapshot
from tasks.cycle import student_plan
from tests.serving.catalog_rows import add_version, write_artifact
from tests.tasks.prepare.conftest import insert, make_row


def test_the_next_training_starts_from_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    db: Database = get_database()
    insert(db, [make_row(n) for n in range(5)])
    with db.transaction(write=True) as session:
        snapshot = add_snapshot(
            session=session, fingerprint="f" * 64, watermark=5, path=str(tmp_path / "s"),
            code_version="c", config={}, split_sizes={}, filter_stats={},
        )  # fmt: skip
        snapshot_id = snapshot.id
    entry = write_artifact(tmp_path, "models/smol/1/smol.Q8_0.gguf", b"x" * 8)
    add_version(db, "smol", 1, [entry])
    assert student_plan("smol", snapshot_id, 1).cold_start is None
    with db.transaction(write=True) as session:
        versions = [{"student": "smol", "agent": None, "version": 1, "how": "trained on"}]
        session.add(Erasure(id="e" * 32, scope="device", actor="x", status="done",
                            counts={}, versions=versions))  # fmt: skip
    assert student_plan("smol", snapshot_id, 1).cold_start is None  # the setting is off
    monkeypatch.setenv("DISTILLERY_ERASURE_RETRAIN", "1")
    plan = student_plan("smol", snapshot_id, 1)
    assert plan.cold_start and "v1 was trained on erased rows" in plan.cold_start
    assert plan.skip is None and plan.stable_version == 1  # still trains, still gated vs v1
