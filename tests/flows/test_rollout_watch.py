"""The rollout watcher on made-up live feedback: it rolls back, widens and promotes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.rollout_watch import rollout_watch
from storage.db import Database, get_database
from storage.registry import channels, rollouts
from tests.serving.catalog_rows import add_version, write_artifact
from tests.tasks.prepare.conftest import insert, make_row


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    db = get_database()
    for version in (1, 2):
        entry = write_artifact(tmp_path, f"models/smol/{version}/smol.Q8_0.gguf", b"x" * 64)
        add_version(db, "smol", version, [entry], stable=version == 1)
    yield db
    db.dispose()


def _feedback(db: Database, version: str, per_day: int, bad: float, seed: int) -> None:
    """Two days of ratings for `version` (a `bad` share rated 1), received before now."""
    rng, now = random.Random(seed), datetime.now(UTC)
    for day in (1, 2):
        rows = [
            make_row(seed * 100_000 + day * 1000 + i, model_name="smol", model_version=version,
                     rating=1 if rng.random() < bad else 5)
            for i in range(per_day)
        ]  # fmt: skip
        insert(db, rows, device=f"p{version}-{seed}", received_at=now - timedelta(days=day))


def test_the_watcher_rolls_back_widens_and_promotes(
    prefect_harness: None, store: Database, tmp_path: Path
) -> None:
    _feedback(store, "1", 400, 0.05, seed=1)
    rollouts.start(store, "smol", 2, 10, actor="alice")
    _feedback(store, "2", 150, 0.45, seed=2)  # the canary's users are clearly less happy
    [row] = rollout_watch()
    assert (row.action, row.percent) == ("rollback", 0), row
    assert rollouts.rollouts(store)[0].status == "aborted"
    abort = channels.history(store, "smol", channel="canary")[-1]
    assert (abort.action, abort.actor) == ("abort", "rollout-watch")
    assert "thumbs_down" in abort.reason and "clearly worse" in abort.reason  # numbers kept

    # v3, as good as stable: too few answers at first (widen), then enough (promote).
    entry = write_artifact(tmp_path, "models/smol/3/smol.Q8_0.gguf", b"y" * 64)
    add_version(store, "smol", 3, [entry], stable=False)
    rollouts.start(store, "smol", 3, 10, actor="alice")
    _feedback(store, "3", 60, 0.05, seed=3)
    assert rollout_watch(dry_run=True)[0].action == "widen"
    assert rollouts.rollouts(store)[0].percent == 10  # a dry run changes nothing
    [row] = rollout_watch()
    assert (row.action, row.percent) == ("widen", 50), row
    _feedback(store, "3", 400, 0.05, seed=4)
    [row] = rollout_watch()
    assert (row.action, row.percent) == ("promote", 100), row
    assert rollouts.rollouts(store)[0].status == "promoted"
    trail = [(e.channel, e.action, e.actor) for e in channels.history(store, "smol")][-4:]
    assert trail == [
        ("canary", "canary", "alice"),
        ("canary", "widen", "rollout-watch"),
        ("stable", "promote", "rollout-watch"),
        ("canary", "promote", "rollout-watch"),
    ], trail
    assert rollout_watch() == []  # nothing running any more


def test_a_cycle_with_canary_percent_rolls_the_new_version_out(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.perpetual import perpetual_cycle
    from tests.flows.test_perpetual import _rows, seed_rows, tiny_config

    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISTILLERY_REGISTRY", "local")
    db = get_database()
    config = tiny_config(students=["tiny-llama-student"], canary_percent=10)
    insert(db, seed_rows(0, 40))
    first = _rows(perpetual_cycle(config, return_state=True))["tiny-llama-student"]
    assert (first.status, first.version) == ("published", 1)  # the first goes to stable
    assert rollouts.rollouts(db) == []
    insert(db, seed_rows(40, 30), device="phone-2")
    second = _rows(perpetual_cycle(config, return_state=True))["tiny-llama-student"]
    assert (second.status, second.version) == ("published", 2), second
    assert "canary on 10 % of devices" in str(second.detail)
    [rollout] = rollouts.rollouts(db)
    assert (rollout.version, rollout.stable_version, rollout.percent) == (2, 1, 10)
    assert rollout.status == "active"
    db.dispose()
