"""Live quality per version from stored interactions: estimates, same-day comparisons, CLI."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.repo.live_quality import LiveQuality, mean_estimate, share_estimate
from tests.tasks.prepare.conftest import insert, make_row

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def _day(db: Database, day: int, version: str, n: int, *, low: float, seed: int) -> None:
    """`n` interactions of `version` on day `day` before NOW; a `low` share rated 1."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        bad = rng.random() < low
        rows.append(
            make_row(
                seed * 1000 + i,
                model_name="tiny",
                model_version=version,
                rating=1 if bad else 5,
                correction="better" if bad and i % 2 else None,
                response="x" * (20 + i % 5),
                uncertainty={"mean_entropy": 2.0 if bad else 1.0},
            )
        )
    insert(db, rows, device=f"phone-{version}", received_at=NOW - timedelta(days=day, hours=1))


def test_estimates_and_their_intervals() -> None:
    share = share_estimate([True] * 3 + [False] * 7)
    assert share is not None and share.value == pytest.approx(0.3)
    assert share.low == pytest.approx(0.1078, abs=1e-3) and share.high == pytest.approx(
        0.6032, abs=1e-3
    )
    none = share_estimate([False] * 20)  # Wilson: an all-good sample still has a ceiling above 0
    assert none is not None and none.low == 0.0 and 0.1 < none.high < 0.2
    mean = mean_estimate([4.0, 5.0, 5.0, 4.0])
    assert mean is not None and mean.value == 4.5 and mean.low < 4.5 < mean.high
    assert share_estimate([]) is None and mean_estimate([]) is None


def test_a_worse_version_is_clearly_worse_only_over_the_days_both_answered(db: Database) -> None:
    for day in (1, 2, 3):
        _day(db, day, "1", 150, low=0.10, seed=day)
        _day(db, day, "2", 150, low=0.40, seed=10 + day)
    _day(db, 5, "1", 300, low=0.90, seed=99)  # a bad day for v1 alone: not compared
    _day(db, 40, "2", 50, low=0.0, seed=98)  # outside the window
    with db.transaction() as session:
        live = LiveQuality.read(session, days=14, model_name="tiny", now=NOW)
    by_version = {q.model_version: q for q in live.versions()}
    assert by_version["1"].interactions == 750 and len(by_version["1"].days) == 4
    assert by_version["2"].interactions == 450 and len(by_version["2"].days) == 3
    new, old, diffs = live.compare("tiny", "2", "1")
    assert new.interactions == 450 and old.interactions == 450  # day 5 left out
    by_metric = {d.metric: d for d in diffs}
    assert set(by_metric) == {"mean_rating", "thumbs_down", "corrections", "mean_entropy"}
    assert all(d.clearly_worse for d in diffs), diffs
    assert by_metric["thumbs_down"].delta == pytest.approx(
        new.thumbs_down.value - old.thumbs_down.value  # type: ignore[union-attr]
    )
    # The same version against itself is never clearly worse.
    assert not any(d.clearly_worse for d in live.compare("tiny", "1", "1")[2])


@pytest.mark.parametrize("sqlite_only", [True])
def test_the_command_prints_versions_and_a_comparison(
    sqlite_only: bool,
    sqlite_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cli.main import main

    now = datetime.now(UTC)
    for version, low in (("1", 0.1), ("2", 0.5)):
        rows = [
            make_row(int(version) * 100 + i, model_name="tiny", model_version=version,
                     rating=1 if i < low * 100 else 5)
            for i in range(100)
        ]  # fmt: skip
        insert(sqlite_db, rows, device=f"p{version}", received_at=now - timedelta(hours=2))
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", sqlite_db.url.render_as_string())
    assert main(["quality", "tiny", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["version"], r["interactions"]) for r in lines] == [("1", 100), ("2", 100)]
    assert lines[1]["thumbs_down"]["value"] == pytest.approx(0.5)
    assert main(["quality", "tiny", "--candidate", "2", "--reference", "1"]) == 0
    out = capsys.readouterr().out
    assert "over 1 shared day:" in out and "thumbs_down: +0.400" in out and "clearly worse" in out
    assert main(["quality", "tiny", "--candidate", "2", "--reference", "9"]) == 2
    assert "no common day" in capsys.readouterr().err
    assert main(["quality", "--candidate", "2"]) == 2
    assert "go together" in capsys.readouterr().err
