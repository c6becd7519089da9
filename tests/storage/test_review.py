"""The review queue and review corrections on real SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Interaction, InteractionRevision
from storage.repo.devices import get_credentials, list_devices, set_role
from storage.repo.feedback import FeedbackRow, insert_feedback_batch
from storage.repo.live_quality import LiveQuality
from storage.repo.review import NotReviewable, review_queue, store_review
from tests.tasks.prepare.conftest import PAST, insert, make_row


def summary(share: float, entropy: float, alerts: int = 0) -> dict:
    return {
        "tokens": 20,
        "mean_entropy": entropy,
        "low_p_share": share,
        "alert_counts": {"spike": alerts} if alerts else {},
        "thresholds": {"low_p": 0.3},
    }


def row_of(db: Database, n: int) -> Interaction:
    with db.transaction() as session:
        found = session.scalar(select(Interaction).where(Interaction.id == make_row(n)["id"]))
        assert found is not None
        session.expunge(found)
        return found


def test_queue_offers_uncertain_and_low_rated_answers_least_sure_first(db: Database) -> None:
    insert(
        db,
        [
            make_row(0, source="web", uncertainty=summary(0.05, 0.4)),  # confident
            make_row(1, source="web", uncertainty=summary(0.45, 1.0)),  # uncertain
            make_row(2, source="web", uncertainty=summary(0.70, 2.5)),  # the least sure
            make_row(3, rating=1),  # a phone's thumbs down: nothing measured
            make_row(4, rating=2),
            make_row(5, rating=3),  # mediocre: not offered
            make_row(6, rating=1, correction="Its user fixed it."),  # corrected already
            make_row(7, rating=1, consent="evaluate"),  # its user allowed evaluation only
            make_row(8, source="web", uncertainty=summary(0.10, 0.5), rating=1),  # sure, bad
            make_row(9, source="web", uncertainty=None),  # JSON null: nothing measured
        ],
    )
    with db.transaction() as session:
        queue = review_queue(session=session)
    ids = [uuid.UUID(q.id).int - 1 for q in queue]
    assert ids == [2, 1, 8, 3, 4]
    assert queue[0].reasons == ("70% of tokens had p < 0.3", "mean entropy 2.50 nats")
    assert queue[0].score == pytest.approx(0.95) and queue[0].low_p_share == 0.7
    assert queue[2].reasons == ("rated 1 of 5",) and queue[2].mean_entropy == 0.5
    assert queue[3].score == 0.0 and queue[3].low_p_share is None
    with db.transaction() as session:
        assert len(review_queue(session=session, limit=2)) == 2
        assert [q.id for q in review_queue(session=session, low_rating=1)][-1] == queue[3].id


def test_a_review_correction_is_stored_audited_and_leaves_the_queue(db: Database) -> None:
    insert(db, [make_row(1, rating=1), make_row(2, rating=1)])
    insert(db, [], device="reviewer-1")
    before = row_of(db, 1)
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with db.transaction(write=True) as session:
        done = store_review(
            session=session,
            interaction_id=make_row(1)["id"],
            correction="The right answer.",
            reviewer="reviewer-1",
            now=when,
        )
    after = row_of(db, 1)
    assert (after.correction, after.correction_source, after.reviewed_by) == (
        "The right answer.",
        "review",
        "reviewer-1",
    )
    # A new seq and arrival time: the next snapshot reads the row again.
    assert after.seq > before.seq and done.seq == after.seq and after.received_at == when
    assert after.device_id == before.device_id == "phone-1" and after.rating == 1
    with db.transaction() as session:
        [revision] = session.scalars(select(InteractionRevision))
        assert [q.id for q in review_queue(session=session)] == [str(make_row(2)["id"])]
    assert (revision.device_id, revision.previous_seq, revision.correction) == (
        "reviewer-1",
        before.seq,
        None,
    )
    assert revision.rating == 1 and revision.replaced_at == when

    with db.transaction(write=True) as session, pytest.raises(NotReviewable) as again:
        store_review(
            session=session, interaction_id=make_row(1)["id"], correction="x", reviewer="r"
        )
    assert again.value.reason == "corrected" and "by a reviewer" in str(again.value)


def test_unknown_corrected_and_evaluate_only_rows_are_refused(db: Database) -> None:
    insert(db, [make_row(1, correction="Mine."), make_row(2, rating=1, consent="evaluate")])
    insert(db, [], device="r")
    cases = [(uuid.UUID(int=999), LookupError), (make_row(1)["id"], NotReviewable)]
    cases.append((make_row(2)["id"], NotReviewable))
    for interaction_id, error in cases:
        with db.transaction(write=True) as session, pytest.raises(error):
            store_review(
                session=session, interaction_id=interaction_id, correction="x", reviewer="r"
            )
    assert row_of(db, 2).correction is None


def _resend(db: Database, n: int, *, rating: int | None, correction: str | None) -> int:
    """The row's own device re-sends it with a later updated_at; how many rows changed."""
    original = make_row(n)
    item = FeedbackRow(
        id=original["id"],
        model_name=original["model_name"],
        model_version=original["model_version"],
        prompt=original["prompt"],
        response=original["response"],
        client_created_at=PAST,
        correction=correction,
        rating=rating,
        client_updated_at=PAST + timedelta(days=1 + n),
    )
    with db.transaction(write=True) as session:
        return insert_feedback_batch(
            session=session, device_id="phone-1", interactions=[item]
        ).updated


def test_the_devices_later_update_keeps_a_review_unless_it_corrects(db: Database) -> None:
    insert(db, [make_row(1, rating=None), make_row(2, rating=None)])
    insert(db, [], device="r")
    with db.transaction(write=True) as session:
        for n in (1, 2):
            store_review(
                session=session,
                interaction_id=make_row(n)["id"],
                correction="Reviewed.",
                reviewer="r",
            )
    # The user rates the answer later: the app never saw the review, so it sends no correction.
    assert _resend(db, 1, rating=2, correction=None) == 1
    kept = row_of(db, 1)
    assert (kept.rating, kept.correction, kept.correction_source, kept.reviewed_by) == (
        2,
        "Reviewed.",
        "review",
        "r",
    )
    # The user's own correction wins; the review's is in the audit trail.
    assert _resend(db, 2, rating=None, correction="The user's own.") == 1
    replaced = row_of(db, 2)
    assert (replaced.correction, replaced.correction_source, replaced.reviewed_by) == (
        "The user's own.",
        None,
        None,
    )
    with db.transaction() as session:
        last = session.scalars(
            select(InteractionRevision)
            .where(InteractionRevision.interaction_id == make_row(2)["id"])
            .order_by(InteractionRevision.id.desc())
        ).first()
    assert last is not None
    assert (last.correction, last.correction_source, last.reviewed_by) == (
        "Reviewed.",
        "review",
        "r",
    )


def test_live_quality_counts_users_corrections_not_reviews(db: Database) -> None:
    now = datetime.now(UTC)
    insert(db, [make_row(n, rating=1) for n in range(4)], received_at=now)
    insert(db, [make_row(10, correction="A user's fix.")], received_at=now)
    insert(db, [], device="r")
    with db.transaction(write=True) as session:
        for n in range(2):
            store_review(
                session=session, interaction_id=make_row(n)["id"], correction="R.", reviewer="r"
            )
        [quality] = LiveQuality.read(session, days=1).versions()
    assert quality.interactions == 5
    assert quality.corrections is not None and quality.corrections.value == pytest.approx(1 / 5)


def test_roles_are_granted_listed_and_read_with_the_credentials(db: Database) -> None:
    insert(db, [], device="a")
    insert(db, [], device="b")
    with db.transaction(write=True) as session:
        assert set_role(session=session, device_ids=["a", "zzz"], role="reviewer") == ["a"]
        with pytest.raises(ValueError, match="role must be one of"):
            set_role(session=session, device_ids=["a"], role="admin")
    with db.transaction() as session:
        creds = get_credentials(session=session, device_id="a")
        assert creds is not None and creds.role == "reviewer"
        other = get_credentials(session=session, device_id="b")
        assert other is not None and other.role == "user"
        assert [d.id for d in list_devices(session=session, role="reviewer")] == ["a"]
