"""Nothing falls between cycles: rows of a cycle that published nothing reach the next snapshot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from storage.db import Database
from storage.models import utcnow
from storage.repo import runs
from storage.repo.versions import create_pending_version, mark_published
from tasks.prepare import PrepareConfig, build_snapshot, load_snapshot
from tasks.prepare.select import carry_over
from tests.tasks.prepare.conftest import insert, make_row

NO_REPLAY = {"replay_ratio": 0.0}


def members(path: Path) -> set[str]:
    return {r["id"] for ds in load_snapshot(path).values() for r in ds}


def ids(numbers: range) -> set[str]:
    return {str(make_row(i)["id"]) for i in numbers}


def build(db: Database, root: Path, **config: object):
    cfg = PrepareConfig(**{**NO_REPLAY, **config})
    return build_snapshot(db, config=cfg, artifact_root=root, settle_seconds=0)


def reject(db: Database, snapshot_id: int, student: str = "s") -> None:
    """A cycle on the snapshot whose candidate the gate rejected (as tasks.cycle records it)."""
    with db.transaction(write=True) as session:
        run = runs.create_run(session=session, student=student, teacher="t", strategy="xtok")
        run.snapshot_id = snapshot_id
        runs.finish_run(session=session, run_id=run.id, metrics={"gate_decision": "reject"})


def publish(db: Database, snapshot_id: int, version: int, student: str = "s") -> None:
    with db.transaction(write=True) as session:
        row = create_pending_version(
            session=session, student=student, version=version, files=[], base_model="b",
            snapshot_id=snapshot_id,
        )  # fmt: skip
        mark_published(row, session=session, files=[])


def test_rows_of_a_rejected_cycle_are_in_the_next_snapshot(db: Database, tmp_path: Path) -> None:
    recent = utcnow() - timedelta(hours=1)
    insert(db, [make_row(i) for i in range(6)], received_at=recent)
    first = build(db, tmp_path)
    assert members(first.path) == ids(range(6))
    reject(db, first.snapshot_id)  # the gate said no: no version was trained on these rows
    insert(db, [make_row(i) for i in range(6, 10)], received_at=recent)
    second = build(db, tmp_path)
    assert second.new_records == 4 and second.filter_stats["carried"] == 6
    assert members(second.path) == ids(range(10))  # the rejected cycle's rows are back
    # Once a version trained on a snapshot is published, its rows are not carried again.
    publish(db, second.snapshot_id, version=1)
    insert(db, [make_row(i) for i in range(10, 13)], received_at=recent)
    third = build(db, tmp_path)
    assert third.filter_stats["carried"] == 0 and members(third.path) == ids(range(10, 13))


def test_a_failed_cycle_is_carried_within_the_age_and_size_limits(
    db: Database, tmp_path: Path
) -> None:
    now = utcnow()
    insert(db, [make_row(i) for i in range(3)], received_at=now - timedelta(days=40))
    insert(db, [make_row(i) for i in range(3, 8)], received_at=now - timedelta(days=2))
    build(db, tmp_path)  # its cycle failed before publishing anything
    insert(db, [make_row(i) for i in range(8, 10)], received_at=now - timedelta(hours=1))
    with db.transaction() as session:  # the policy on this state, before the next snapshot

        def carried(**config: object) -> list[int]:
            return carry_over(session, before=8, config=PrepareConfig(**config), now=now)

        assert carried() == [4, 5, 6, 7, 8]  # seqs; by default 30 days: rows 0-2 are too old
        assert carried(carry_max_rows=2) == [7, 8]  # the newest two
        assert carried(carry_max_rows=0) == []
        assert carried(carry_max_age_days=None) == list(range(1, 9))
    later = build(db, tmp_path)
    assert later.filter_stats["carried"] == 5 and members(later.path) == ids(range(3, 10))


def test_rows_stay_until_every_student_published_a_version_on_them(
    db: Database, tmp_path: Path
) -> None:
    recent = utcnow() - timedelta(hours=1)
    insert(db, [make_row(i) for i in range(5)], received_at=recent)
    first = build(db, tmp_path)
    publish(db, first.snapshot_id, version=1, student="a")  # a's candidate passed the gate
    reject(db, first.snapshot_id, student="b")  # b's did not: b never learned these rows
    insert(db, [make_row(i) for i in range(5, 7)], received_at=recent)
    second = build(db, tmp_path)
    assert second.filter_stats["carried"] == 5 and members(second.path) == ids(range(7))
    publish(db, second.snapshot_id, version=1, student="b")  # b has all 7 rows now ...
    insert(db, [make_row(7)], received_at=recent)
    third = build(db, tmp_path)
    assert third.filter_stats["carried"] == 2  # ... a has not seen rows 5 and 6 yet
    publish(db, third.snapshot_id, version=2, student="a")
    publish(db, third.snapshot_id, version=2, student="b")
    insert(db, [make_row(8)], received_at=recent)
    fourth = build(db, tmp_path)
    assert fourth.filter_stats["carried"] == 0 and members(fourth.path) == ids(range(8, 9))
