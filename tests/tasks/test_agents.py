"""Per-agent slices of a real snapshot: own rows, shared-data fallback, never another agent's."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import Database
from storage.models import Channel, ModelVersion
from tasks.agents import agent_plan, agent_slice, agents_of
from tasks.prepare.config import PrepareConfig
from tasks.prepare.snapshot import build_snapshot
from tasks.prepare.store import load_snapshot
from tests.tasks.prepare.conftest import insert, make_row


@pytest.fixture
def snapshot(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    rows = [make_row(i, agent="support") for i in range(40)]
    rows += [make_row(100 + i, agent="coder") for i in range(6)]
    rows += [make_row(200 + i) for i in range(30)]  # shared: no agent
    insert(db, rows)
    info = build_snapshot(db, config=PrepareConfig(), artifact_root=tmp_path, settle_seconds=0)
    assert info.path is not None
    return info


def test_big_slice_keeps_only_its_agent(db: Database, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sliced = agent_slice(db, snapshot.path, "support", tmp_path / "support", min_rows=10)
    assert not sliced.fallback and sliced.shared_rows == 0 and sliced.own_rows >= 10
    data = load_snapshot(sliced.path)
    owners = agents_of(db, [i for split in data.values() for i in split["id"]])
    assert set(owners.values()) == {"support"}
    assert len(data["train"]) == sliced.own_rows
    assert sum(len(s) for s in data.values()) <= 40


def test_small_slice_falls_back_to_shared_rows(db: Database, snapshot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sliced = agent_slice(db, snapshot.path, "coder", tmp_path / "coder", min_rows=10)
    assert sliced.fallback and sliced.own_rows < 10 and sliced.shared_rows > 0
    assert "fallback" in sliced.detail
    data = load_snapshot(sliced.path)
    owners = agents_of(db, data["train"]["id"])
    assert set(owners.values()) == {"coder", None}  # never the support agent's rows
    assert len(data["train"]) == sliced.own_rows + sliced.shared_rows


def test_agent_plan_warm_starts_from_the_student_then_its_own_channel(
    db: Database, snapshot
) -> None:  # type: ignore[no-untyped-def]
    plan = agent_plan(db, "tiny-llama-student", "support", snapshot.snapshot_id)
    assert plan.skip is None and plan.stable_version is None and plan.warm_run_id is None
    with db.transaction(write=True) as session:
        row = ModelVersion(
            student="tiny-llama-student",
            version=3,
            base_model="b",
            status="published",
            agent="support",
            snapshot_id=snapshot.snapshot_id,
        )
        session.add(row)
        session.flush()
        session.add(Channel(student="tiny-llama-student", name="stable:support",
                            model_version_id=row.id))  # fmt: skip
    plan = agent_plan(db, "tiny-llama-student", "support", snapshot.snapshot_id)
    assert plan.stable_version == 3 and plan.skip and "already built" in plan.skip
    other = agent_plan(db, "tiny-llama-student", "coder", snapshot.snapshot_id)
    assert other.skip is None and other.stable_version is None


def test_evaluation_splits_without_the_agent_are_kept_whole(
    db: Database, snapshot, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    none = agent_slice(db, snapshot.path, "nobody", tmp_path / "nobody", min_rows=0)
    assert none.own_rows == 0 and not none.path.exists()  # nothing to train: no folder
    coder = agent_slice(db, snapshot.path, "coder", tmp_path / "coder", min_rows=0)
    data, whole = load_snapshot(coder.path), load_snapshot(snapshot.path)  # loads back
    assert len(data["train"]) == coder.own_rows > 0 and not coder.fallback
    owners = agents_of(db, [i for s in whole if s != "train" for i in whole[s]["id"]])
    for split in (s for s in whole if s != "train"):
        mine = sum(owners.get(i) == "coder" for i in whole[split]["id"])
        assert len(data[split]) == (mine or len(whole[split])), split
