"""Snapshots on real SQLite and PostgreSQL: reproducible, idempotent, leak-free, robust."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from storage.db import Database
from storage.models import utcnow
from storage.repo.snapshots import list_snapshots
from tasks.prepare import (
    PrepareConfig,
    build_snapshot,
    load_negatives,
    load_snapshot,
    previous_test_splits,
    read_manifest,
)
from tasks.prepare.reader import BLOCK
from tests.tasks.prepare.conftest import insert, make_row


def build(db: Database, root: Path, **overrides: object):
    return build_snapshot(db, config=PrepareConfig(**overrides), artifact_root=root)


def file_hashes(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def split_prompts(path: Path) -> dict[str, set[str]]:
    return {name: set(ds["prompt_hash"]) for name, ds in load_snapshot(path).items()}


def test_same_inputs_give_same_fingerprint_and_identical_files(
    db: Database, tmp_path: Path
) -> None:
    rows = [make_row(i) for i in range(120)] + [make_row(500, rating=1)]
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other.upgrade()
    insert(db, rows)
    insert(other, rows)
    first = build(db, tmp_path / "a", group_cap=40)
    second = build(other, tmp_path / "b", group_cap=40)
    assert first.fingerprint == second.fingerprint and first.skipped_reason is None
    assert first.path.name == first.fingerprint
    hashes = file_hashes(first.path)
    assert any(name.endswith(".arrow") for name in hashes) and "negatives/state.json" in hashes
    assert hashes == file_hashes(second.path)
    changed = build_snapshot(
        db, config=PrepareConfig(group_cap=41), artifact_root=tmp_path / "c", since=0
    )
    assert changed.fingerprint != first.fingerprint and changed.skipped_reason is None
    other.dispose()


def test_snapshot_contents_manifest_and_row(db: Database, tmp_path: Path) -> None:
    insert(db, [make_row(i) for i in range(50)])
    insert(db, [make_row(100, correction="The corrected answer."), make_row(101, rating=2)])
    info = build(db, tmp_path, system_prompt="Be brief.")
    dsd = load_snapshot(info.path)
    assert set(dsd) == {"train", "validation", "test"}
    assert sum(info.split_sizes.values()) == 51 == sum(len(d) for d in dsd.values())
    records = {r["id"]: r for ds in dsd.values() for r in ds}
    fixed = records[str(make_row(100)["id"])]
    assert fixed["target"] == "The corrected answer." and fixed["target_source"] == "correction"
    assert fixed["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in fixed["messages"]] == ["system", "user", "assistant"]
    negatives = load_negatives(info.path)
    assert negatives["id"] == [str(make_row(101)["id"])] and negatives["rating"] == [2]
    manifest = read_manifest(info.path)
    assert manifest["fingerprint"] == info.fingerprint and manifest["watermark"] == 52
    assert manifest["filter_stats"]["dropped"] == {"low_rating_no_correction": 1}
    with db.transaction() as session:
        (row,) = list_snapshots(session=session)
    assert row.fingerprint == info.fingerprint and row.split_sizes == info.split_sizes
    assert row.watermark == 52 and Path(row.path) == info.path


def test_rerun_is_idempotent(db: Database, tmp_path: Path) -> None:
    insert(db, [make_row(i) for i in range(30)])
    first = build(db, tmp_path)
    again = build(db, tmp_path)
    assert again.skipped_reason and again.skipped_reason.startswith("no new interactions")
    assert again.snapshot_id == first.snapshot_id and again.fingerprint == first.fingerprint
    rebuilt = build_snapshot(db, config=PrepareConfig(), artifact_root=tmp_path, since=0)
    assert rebuilt.skipped_reason == "snapshot exists"
    assert rebuilt.snapshot_id == first.snapshot_id
    with db.transaction() as session:
        assert len(list_snapshots(session=session)) == 1
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [first.fingerprint]


def test_every_filter_reason_is_counted(db: Database, tmp_path: Path) -> None:
    bad = [
        make_row(1, rating=0),
        make_row(2, rating=99),
        make_row(3, prompt=""),
        make_row(4, response="x" * 9000),
        make_row(5, response="k"),
        make_row(6, response="text with \x1b escape"),
        make_row(7, response="caf\u00c3\u00a9 broken"),
        make_row(8, response="Z" * 300),
        make_row(9, rating=3),
        make_row(10, rating=1),
        make_row(11, rating=None),
        make_row(12, prompt=make_row(0)["prompt"], response=make_row(0)["response"]),
    ]
    insert(db, [make_row(0), *bad])
    info = build(db, tmp_path, keep_unrated=False)
    assert info.filter_stats["dropped"] == {
        "invalid_rating": 2,
        "empty": 1,
        "too_long": 1,
        "too_short": 1,
        "control_chars": 1,
        "broken_encoding": 1,
        "non_text": 1,
        "mediocre_rating": 1,
        "low_rating_no_correction": 1,
        "unrated": 1,
        "duplicate": 1,
    }
    assert info.split_sizes and sum(info.split_sizes.values()) == 1
    assert info.filter_stats["negatives"] == 1


def test_pii_is_scrubbed_in_the_snapshot(db: Database, tmp_path: Path) -> None:
    insert(
        db,
        [
            make_row(1, prompt="Mail ann@example.com and call +44 20 7946 0958 please"),
            make_row(
                2, prompt="Charge 4111 1111 1111 1111 via https://u:pw@api.example/x?token=t0k"
            ),
        ],
    )
    info = build(db, tmp_path)
    assert info.filter_stats["pii"] == {"CARD": 1, "EMAIL": 1, "PHONE": 1, "SECRET": 2}
    prompts = sorted(r["prompt"] for ds in load_snapshot(info.path).values() for r in ds)
    assert prompts == [
        "Charge <CARD> via https://<SECRET>@api.example/x?token=<SECRET>",
        "Mail <EMAIL> and call <PHONE> please",
    ]


def test_no_prompt_in_two_splits_and_test_stays_test(db: Database, tmp_path: Path) -> None:
    # The same prompts asked again with other answers must not cross splits.
    insert(db, [make_row(i, prompt=f"Question {i % 150}?") for i in range(300)])
    first = build(db, tmp_path)
    seen = split_prompts(first.path)
    assert not (seen["train"] & seen["test"] or seen["train"] & seen["validation"])
    assert not seen["validation"] & seen["test"] and len(seen["test"]) > 5

    # New data with old and new prompts, and a smaller test share in the config.
    insert(
        db,
        [make_row(1000 + i, prompt=f"Question {i}?", response=f"Again {i}.") for i in range(400)],
    )
    second = build(db, tmp_path, train_ratio=0.9, validation_ratio=0.07)
    now = split_prompts(second.path)
    assert not (now["train"] & now["test"] or now["validation"] & now["test"])
    assert not now["train"] & now["validation"]
    old_test_again = seen["test"] & (now["train"] | now["validation"] | now["test"])
    assert old_test_again and old_test_again <= now["test"]
    assert not (seen["train"] & now["test"])  # nor does an earlier train prompt turn test
    assert second.filter_stats["forced_split"] > 0
    assert previous_test_splits(db) == [first.path / "test", second.path / "test"]
    assert previous_test_splits(db, before_snapshot_id=second.snapshot_id) == [first.path / "test"]


def test_replay_sample_is_seeded_and_from_older_rows(db: Database, tmp_path: Path) -> None:
    insert(db, [make_row(i) for i in range(200)])
    first = build(db, tmp_path)
    insert(db, [make_row(1000 + i) for i in range(50)])
    ids = {}
    for seed in (1, 1, 2):
        info = build_snapshot(
            db,
            config=PrepareConfig(seed=seed, replay_ratio=0.4),
            artifact_root=tmp_path / str(seed),
            since=first.watermark,
        )
        assert info.filter_stats["new"] == 50 and info.filter_stats["replay"] == 20
        members = {r["id"] for ds in load_snapshot(info.path).values() for r in ds}
        ids.setdefault(seed, []).append(members)
        old = {str(make_row(i)["id"]) for i in range(200)}
        assert len(members & old) == 20 and len(members - old) == 50
    assert ids[1][0] == ids[1][1] and ids[1][0] != ids[2][0]


def test_sqlite_needs_no_settle_window(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Uploaded a moment ago, prepared at once with the defaults: SQLite serialises writers.
    monkeypatch.delenv("DISTILLERY_WATERMARK_SETTLE_SECONDS", raising=False)
    insert(sqlite_db, [make_row(i) for i in range(12)], received_at=utcnow())
    info = build_snapshot(sqlite_db, config=PrepareConfig(), artifact_root=tmp_path)
    assert info.skipped_reason is None and info.new_records == 12


def test_server_databases_wait_and_say_why(
    postgres_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISTILLERY_WATERMARK_SETTLE_SECONDS", raising=False)
    insert(postgres_db, [make_row(i) for i in range(12)], received_at=utcnow())
    info = build_snapshot(postgres_db, config=PrepareConfig(), artifact_root=tmp_path)
    assert info.snapshot_id is None
    assert "older than 5 s" in (info.skipped_reason or "")
    assert "DISTILLERY_WATERMARK_SETTLE_SECONDS=0" in (info.skipped_reason or "")


def test_unsettled_rows_wait_for_the_next_snapshot(db: Database, tmp_path: Path) -> None:
    insert(db, [make_row(i) for i in range(5)])
    fresh = [make_row(100 + i) for i in range(5)]
    insert(db, fresh, received_at=utcnow())
    first = build_snapshot(db, config=PrepareConfig(), artifact_root=tmp_path, settle_seconds=60)
    assert first.watermark == 5 and first.new_records == 5
    later = utcnow() + timedelta(seconds=120)
    second = build_snapshot(
        db, config=PrepareConfig(), artifact_root=tmp_path, settle_seconds=60, now=later
    )
    assert second.new_records == 5 and second.watermark == 10


def test_bad_data_is_counted_not_fatal(db: Database, tmp_path: Path) -> None:
    insert(
        db,
        [
            make_row(1, prompt="Zalgo t\u0337\u0335e\u0336x\u0334t and RTL \u202e mark, ok?"),
            make_row(2, prompt="start-of-heading \x01 in prompt"),  # PostgreSQL refuses NUL
            make_row(3, response="🎉" * 50),
            make_row(4, prompt="p" * 200_000),
            make_row(5, rating=0),
            make_row(6, rating=99),
            make_row(7, rating=None, category=None),
            make_row(8, prompt="Fine prompt", response="Fine answer", model_name="x" * 128),
        ],
    )
    info = build(db, tmp_path)
    dropped = info.filter_stats["dropped"]
    assert dropped["invalid_rating"] == 2 and dropped["too_long"] == 1
    assert dropped["control_chars"] == 1 and dropped["non_text"] == 1
    assert sum(info.split_sizes.values()) == 3


def test_reader_processes_give_the_same_snapshot(db: Database, tmp_path: Path) -> None:
    # More than two blocks of seqs (they alternate between readers), then a replaying build.
    rows = [make_row(i) for i in range(2 * BLOCK + 50)]
    rows += [make_row(9000, prompt="mail x@example.org now"), make_row(9001, rating=0)]
    newer = [make_row(20_000 + i) for i in range(300)]
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other.upgrade()
    builds = []
    for database, readers in ((db, 3), (other, 0)):
        root = tmp_path / str(readers)
        insert(database, rows)
        first = build_snapshot(
            database, config=PrepareConfig(group_cap=900), artifact_root=root, readers=readers
        )
        insert(database, newer)
        replaying = PrepareConfig(group_cap=900, replay_ratio=0.5)
        second = build_snapshot(database, config=replaying, artifact_root=root, readers=readers)
        builds.append((first, second))
    (striped, striped_next), (inline, inline_next) = builds
    assert striped.fingerprint == inline.fingerprint
    assert striped.filter_stats == inline.filter_stats
    assert striped.filter_stats["pii"] == {"EMAIL": 1}
    assert file_hashes(striped.path) == file_hashes(inline.path)
    assert striped_next.filter_stats["replay"] == 150
    assert striped_next.fingerprint == inline_next.fingerprint
    assert file_hashes(striped_next.path) == file_hashes(inline_next.path)
    other.dispose()
