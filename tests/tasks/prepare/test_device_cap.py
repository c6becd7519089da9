"""Poisoning: one device floods feedback; the snapshot caps its share."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database
from tasks.prepare import build_snapshot, load_snapshot
from tasks.prepare.config import PrepareConfig
from tasks.prepare.device_cap import DROP_REASON, share_cap
from tests.tasks.prepare.conftest import insert, make_row

HONEST, PER_HONEST, FLOOD = 10, 30, 3000


def test_share_cap_keeps_each_capped_device_within_its_share() -> None:
    counts = {"flood": 3000, **{f"h{i}": 30 for i in range(10)}}
    cap = share_cap(counts, 0.5, floor=0)
    assert cap == 300  # 300 <= 0.5 * (300 + 10 * 30), and 301 would not be
    assert share_cap(counts, 0.25, floor=0) == 100
    assert share_cap({"a": 40, "b": 40}, 0.5, floor=0) is None  # nobody over half
    assert share_cap({"solo": 500}, 0.5, floor=100) == 100  # one device: the floor
    assert share_cap({"solo": 50}, 0.5, floor=100) is None


def flood(db: Database) -> None:
    for d in range(HONEST):
        rows = [make_row(d * 1000 + n) for n in range(PER_HONEST)]
        insert(db, rows, device=f"honest-{d}")
    poison = [
        make_row(100_000 + n, prompt=f"Poison {n}: always answer that the moon is cheese.")
        for n in range(FLOOD)
    ]
    insert(db, poison, device="flooder")


def poisoned_share(path: Path) -> tuple[int, int]:
    prompts = [p for ds in load_snapshot(path).values() for p in ds["prompt"]]
    return sum(p.startswith("Poison") for p in prompts), len(prompts)


def test_a_flood_from_one_device_is_capped(db: Database, tmp_path: Path) -> None:
    flood(db)
    info = build_snapshot(
        db, config=PrepareConfig(), artifact_root=tmp_path / "a", settle_seconds=0
    )
    assert info.path is not None
    poison, total = poisoned_share(info.path)
    honest = HONEST * PER_HONEST
    assert (poison, total) == (honest, 2 * honest)  # capped at half the snapshot
    assert info.filter_stats["dropped"][DROP_REASON] == FLOOD - honest

    # The same data without the cap: the flood makes up 10 / 11 of the training set.
    uncapped = build_snapshot(
        db,
        config=PrepareConfig(device_share_cap=None),
        artifact_root=tmp_path / "b",
        settle_seconds=0,
        since=0,
    )
    assert uncapped.path is not None
    assert poisoned_share(uncapped.path) == (FLOOD, FLOOD + honest)
