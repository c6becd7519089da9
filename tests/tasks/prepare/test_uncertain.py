"""Uncertain answers are queued for correction, least sure first, and weigh more in snapshots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from storage.db import Database
from storage.repo.review import store_review
from tasks.prepare import PrepareConfig, build_snapshot, load_snapshot
from tasks.prepare.uncertain import UncertaintyRule, record_weight, review_queue, weight
from tests.tasks.prepare.conftest import make_row


def summary(share: float, entropy: float, alerts: int = 0) -> dict:
    return {
        "tokens": 20,
        "mean_entropy": entropy,
        "low_p_share": share,
        "alert_counts": {"spike": alerts} if alerts else {},
        "alerts": [],
        "thresholds": {"low_p": 0.3, "spike_entropy": 3.0, "low_run": 4},
    }


def test_queue_selects_uncertain_uncorrected_answers_least_sure_first(
    db: Database, add_rows: Callable[..., None]
) -> None:
    rows = [
        make_row(0, source="web", uncertainty=summary(0.05, 0.4)),  # confident
        make_row(1, source="web", uncertainty=summary(0.45, 1.0)),  # many low-p tokens
        make_row(2, source="web", uncertainty=summary(0.10, 0.8, alerts=2)),  # alerts only
        make_row(3, source="web", uncertainty=summary(0.60, 2.5), correction="Fixed."),
        make_row(4),  # a phone answer: nothing measured
    ]
    add_rows(db, rows)
    with db.transaction() as session:
        queue = review_queue(session=session, rule=UncertaintyRule())
    assert [q.id for q in queue] == [str(rows[1]["id"]), str(rows[2]["id"])]
    assert queue[0].reasons == ("45% of tokens had p < 0.3",)
    assert queue[1].reasons == ("2 alert(s)",)
    assert queue[0].source == "web"


def test_weight_grows_with_low_confidence_share_and_is_capped() -> None:
    assert weight(None) == 1.0
    assert weight(summary(0.25, 1.0)) == 1.25
    assert weight(summary(0.9, 1.0), UncertaintyRule(max_weight=1.5)) == 1.5
    # Only uncertain answers and reviewers' corrections weigh more than 1.
    assert record_weight(summary(0.25, 1.0), None) == 1.0  # confident by the rule
    assert record_weight(summary(0.45, 1.0), None) == pytest.approx(1.45)
    assert record_weight(summary(0.25, 1.0), "review") == 1.25
    assert record_weight(None, "review") == 1.0  # a phone answer: nothing measured
    assert record_weight("not a summary", None) == 1.0


def test_snapshot_records_carry_weights_and_who_corrected(
    db: Database, add_rows: Callable[..., None], tmp_path: Path
) -> None:
    """The README's claim: reviewers' corrections and uncertain answers weigh 1 + their
    low-confidence share (capped) in the snapshot; every other record weighs 1."""
    rows = [make_row(n) for n in range(40)]  # phones' answers, rated 5
    rows += [
        make_row(100, source="web", uncertainty=summary(0.45, 1.0)),  # uncertain, unrated
        make_row(101, source="web", uncertainty=summary(0.05, 0.4)),  # confident
        make_row(102, source="web", uncertainty=summary(0.95, 3.0), rating=None),  # capped
        make_row(103, correction="A user's better answer."),
        make_row(104, source="web", uncertainty=summary(0.35, 1.0), rating=None),  # reviewed
        make_row(105, rating=1),  # low rated phone answer, reviewed
    ]
    add_rows(db, rows)
    add_rows(db, [], device="r1")  # the reviewer's device: a review's batch belongs to it
    with db.transaction(write=True) as session:
        for n, text in ((104, "The reviewer's answer."), (105, "Another reviewed answer.")):
            store_review(
                session=session, interaction_id=make_row(n)["id"], correction=text, reviewer="r1"
            )
    info = build_snapshot(
        db, config=PrepareConfig(max_weight=1.8), artifact_root=tmp_path, settle_seconds=0
    )
    assert info.path is not None
    records = {r["id"]: r for split in load_snapshot(info.path).values() for r in split}

    def of(n: int) -> dict:
        return records[str(make_row(n)["id"])]

    assert {of(n)["weight"] for n in range(40)} == {1.0}
    assert of(100)["weight"] == pytest.approx(1.45) and of(100)["corrected_by"] is None
    assert of(101)["weight"] == 1.0
    assert of(102)["weight"] == pytest.approx(1.8)  # 1.95 capped at max_weight
    assert (of(103)["corrected_by"], of(103)["weight"]) == ("user", 1.0)
    reviewed = of(104)
    assert reviewed["target"] == "The reviewer's answer." and reviewed["corrected_by"] == "review"
    assert reviewed["target_source"] == "correction" and reviewed["weight"] == pytest.approx(1.35)
    phone = of(105)  # a low-rated phone answer carries no measurement: it weighs 1
    assert (phone["target"], phone["corrected_by"], phone["weight"]) == (
        "Another reviewed answer.",
        "review",
        1.0,
    )


def test_max_weight_is_checked() -> None:
    with pytest.raises(ValueError, match="max_weight"):
        PrepareConfig(max_weight=0.5)
