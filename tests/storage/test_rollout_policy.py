"""The rollout watcher's policy on made-up live quality: rollback, promote, widen, wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.repo.live_quality import LiveQuality
from storage.repo.rollout_policy import RolloutPolicy, decide
from tests.tasks.prepare.conftest import insert, make_row

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def _answers(db: Database, version: str, n: int, bad: float, seed: int, days: int = 2) -> None:
    """`n` interactions of `version` per day for `days` days; a `bad` share rated 1."""
    rng = random.Random(seed)
    for day in range(1, days + 1):
        rows = [
            make_row(seed * 100_000 + day * 1000 + i, model_name="tiny", model_version=version,
                     rating=1 if rng.random() < bad else 5)
            for i in range(n)
        ]  # fmt: skip
        insert(db, rows, device=f"p{version}", received_at=NOW - timedelta(days=day, hours=1))


def _decision(db: Database, percent: int, policy: RolloutPolicy | None = None) -> tuple:
    with db.transaction() as session:
        live = LiveQuality.read(session, days=14, model_name="tiny", now=NOW)
    canary, stable, diffs = live.compare("tiny", "2", "1")
    return decide(canary, stable, diffs, percent, policy), canary, stable


@pytest.mark.parametrize(
    ("canary_bad", "per_day", "percent", "action", "after"),
    [
        (0.45, 150, 10, "rollback", 0),  # clearly unhappier users: back at once
        (0.05, 400, 10, "promote", 100),  # as happy, with enough answers: promoted
        (0.05, 60, 10, "widen", 50),  # as happy so far, too few answers: more devices
        (0.05, 60, 100, "wait", 100),  # already everywhere: wait for the evidence
        (0.05, 10, 10, "wait", 10),  # a handful of answers: no step at all
    ],
)
def test_the_policy_on_made_up_days(
    sqlite_db: Database, canary_bad: float, per_day: int, percent: int, action: str, after: int
) -> None:
    _answers(sqlite_db, "1", 400, 0.05, seed=1)
    _answers(sqlite_db, "2", per_day, canary_bad, seed=2)
    decision, canary, stable = _decision(sqlite_db, percent)
    assert (decision.action, decision.percent) == (action, after), decision
    line = decision.line("tiny", "2", "1")
    assert line.startswith(f"{action} tiny v2 vs v1: ") and "shared days" in line, line
    if action == "rollback":
        assert "thumbs_down" in line and "clearly worse" in line
    if action == "promote":
        assert "no worse than stable" in line


def test_a_bad_day_of_stable_alone_does_not_flatter_the_canary(sqlite_db: Database) -> None:
    """Only shared days count: stable's bad extra day must not make a worse canary pass."""
    _answers(sqlite_db, "1", 300, 0.05, seed=1)
    _answers(sqlite_db, "2", 300, 0.45, seed=2)
    rows = [
        make_row(900_000 + i, model_name="tiny", model_version="1", rating=1) for i in range(3000)
    ]
    insert(sqlite_db, rows, device="p1", received_at=NOW - timedelta(days=5))
    decision, canary, stable = _decision(sqlite_db, 10)
    assert decision.action == "rollback" and stable.interactions == 600, decision
