"""Uncertain web answers are queued for correction, least sure first, and weigh more."""

from __future__ import annotations

from collections.abc import Callable

from storage.db import Database
from tasks.prepare.uncertain import UncertaintyRule, correction_queue, weight
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
        queue = correction_queue(session=session, rule=UncertaintyRule())
    assert [q.answer.id for q in queue] == [str(rows[1]["id"]), str(rows[2]["id"])]
    assert queue[0].reasons == ("45% of tokens had p < 0.3",)
    assert queue[1].reasons == ("2 alert(s)",)
    assert queue[0].answer.source == "web"


def test_weight_grows_with_low_confidence_share_and_is_capped() -> None:
    assert weight(None) == 1.0
    assert weight(summary(0.25, 1.0)) == 1.25
    assert weight(summary(0.9, 1.0), UncertaintyRule(max_weight=1.5)) == 1.5
