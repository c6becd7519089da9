"""Store paths in the database: relative to the artifact root, read back local, migrated."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from storage.db import Database, alembic_config
from storage.models import DatasetSnapshot, TrainingRun


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = (tmp_path / "store").resolve()
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(root))
    return root


def _raw(db: Database, sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_paths_inside_the_store_are_stored_relative_and_read_back_local(
    db: Database, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = store / "datasets" / "abc"
    outside = tmp_path / "hand-run"
    with db.transaction(write=True) as session:
        session.add(
            DatasetSnapshot(fingerprint="a" * 64, watermark=1, code_version="t", path=str(inside))
        )
        session.add(
            TrainingRun(
                student="s", teacher="t", strategy="sft", output_dir=str(outside),
                adapter_path=str(store / "runs" / "r" / "adapter"),
            )
        )  # fmt: skip
    assert _raw(db, "SELECT path FROM dataset_snapshots") == [("datasets/abc",)]
    assert _raw(db, "SELECT output_dir, adapter_path FROM training_runs") == [
        (str(outside), "runs/r/adapter")  # outside the store: kept absolute
    ]
    # Another host, the same store mounted elsewhere: the same rows resolve there.
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "mnt"))
    with db.transaction() as session:
        snap = session.query(DatasetSnapshot).one()
        run = session.query(TrainingRun).one()
    assert snap.path == str((tmp_path / "mnt").resolve() / "datasets" / "abc")
    assert run.adapter_path == str((tmp_path / "mnt").resolve() / "runs" / "r" / "adapter")
    assert run.output_dir == str(outside)


def test_an_old_database_upgrades_to_relative_paths_and_back(store: Path, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade("0006")
    with db.transaction(write=True) as session:  # rows as revision 0006 wrote them
        session.add(DatasetSnapshot(fingerprint="b" * 64, watermark=1, code_version="t", path="x"))
        session.add(TrainingRun(student="s", teacher="t", strategy="sft", output_dir="y"))
    inside, outside = store / "runs" / "students" / "s" / "snapshot-1", tmp_path / "elsewhere"
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE dataset_snapshots SET path = :p"), {"p": str(store / "datasets" / "b")}
        )
        conn.execute(text("UPDATE training_runs SET output_dir = :p"), {"p": str(inside)})
        conn.execute(text("UPDATE training_runs SET adapter_path = :p"), {"p": str(outside)})
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    assert _raw(db, "SELECT path FROM dataset_snapshots") == [("datasets/b",)]
    assert _raw(db, "SELECT output_dir, adapter_path FROM training_runs") == [
        ("runs/students/s/snapshot-1", str(outside))
    ]
    with db.transaction() as session:
        assert session.query(TrainingRun).one().output_dir == str(inside)
    command.downgrade(alembic_config(db), "0006")  # and back: absolute again
    assert _raw(db, "SELECT path FROM dataset_snapshots") == [(str(store / "datasets" / "b"),)]
    db.dispose()
