"""Erasure in SQL: one device's rows (or a date's) go with their revisions; nothing else does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import (
    DataAuditEvent,
    Device,
    ErasedRecord,
    FeedbackBatch,
    Interaction,
    InteractionRevision,
)
from storage.repo.erasure import ErasureScope, count_scope, erase_rows, get_erasure
from storage.repo.feedback import FeedbackRow, insert_feedback_batch

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _row(device: int, n: int, **kw: Any) -> FeedbackRow:
    return FeedbackRow(
        id=uuid.UUID(int=device * 1000 + n + 1),
        model_name="smol",
        model_version="1",
        prompt=f"device {device} question {n}",
        response=f"answer {n}",
        client_created_at=T0,
        rating=4,
        **kw,
    )


def _fill(db: Database) -> None:
    """Three devices, five rows each, one revised row each, one web chat turn each."""
    with db.transaction(write=True) as session:
        for d in (1, 2, 3):
            session.add(
                Device(id=f"d{d}", token_hash="x" * 64, platform="android", app_version="1")
            )
        session.flush()
        for d in (1, 2, 3):
            rows = [_row(d, n) for n in range(5)] + [_row(d, 9, source="web")]
            insert_feedback_batch(
                session=session, device_id=f"d{d}", interactions=rows, received_at=T0
            )
    with db.transaction(write=True) as session:
        for d in (1, 2, 3):  # a later rating of row 0 leaves a revision behind
            later = _row(d, 0)._replace(rating=1, client_updated_at=T0 + timedelta(hours=1))
            insert_feedback_batch(
                session=session,
                device_id=f"d{d}",
                interactions=[later],
                received_at=T0 + timedelta(days=d),
            )


def _everything(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    """Every stored row of the tables an erasure must leave alone, as comparable tuples."""
    with db.transaction() as session:
        return {
            "interactions": {
                (r.id, r.device_id, r.prompt, r.response, r.rating, r.source, r.consent)
                for r in session.scalars(select(Interaction))
            },
            "revisions": {
                (r.interaction_id, r.rating) for r in session.scalars(select(InteractionRevision))
            },
            "devices": {(r.id, r.status) for r in session.scalars(select(Device))},
            "batches": {(r.id, r.accepted) for r in session.scalars(select(FeedbackBatch))},
        }


def test_erasing_one_device_removes_its_rows_and_nothing_else(db: Database) -> None:
    _fill(db)
    before = _everything(db)
    scope = ErasureScope(device_id="d2")
    with db.transaction() as session:
        assert count_scope(session=session, scope=scope) == {
            "interactions": 6,
            "chat_turns": 1,
            "revisions": 1,
        }
    with db.transaction(write=True) as session:
        erasure = erase_rows(session=session, scope=scope, actor="alice", reason="GDPR art. 17")
        erasure_id = erasure.id
    after = _everything(db)
    erased = {r for r in before["interactions"] if r[1] == "d2"}
    assert len(erased) == 6
    assert after["interactions"] == before["interactions"] - erased  # the others, intact
    d2_ids = {r[0] for r in erased}
    assert after["revisions"] == {r for r in before["revisions"] if r[0] not in d2_ids}
    assert after["devices"] == before["devices"]  # erasing data is not revoking the phone
    assert after["batches"] == before["batches"]  # counts only, no text
    with db.transaction() as session:
        tombstones = set(session.scalars(select(ErasedRecord.record_id)))
        row = get_erasure(session=session, erasure_id=erasure_id)
        assert row is not None and row.status == "pending" and row.actor == "alice"
        [event] = session.scalars(select(DataAuditEvent))
        assert (event.action, event.actor, event.counts["interactions"]) == ("erase", "alice", 6)
        assert "device d2" in event.subject and "GDPR" in event.subject
    assert {uuid.UUID(str(t)) for t in tombstones} == d2_ids


def test_an_erased_id_resent_is_not_stored_again(db: Database) -> None:
    _fill(db)
    with db.transaction(write=True) as session:
        erase_rows(session=session, scope=ErasureScope(device_id="d1"), actor="d1")
    with db.transaction(write=True) as session:
        resent = [_row(1, 0), _row(1, 1), _row(1, 7)]  # two erased, one new
        result = insert_feedback_batch(session=session, device_id="d1", interactions=resent)
    assert (result.accepted, result.not_stored, result.duplicates) == (1, 2, 0)
    with db.transaction() as session:
        kept = set(session.scalars(select(Interaction.id).where(Interaction.device_id == "d1")))
    assert kept == {_row(1, 7).id}


def test_consent_none_is_counted_and_never_stored(db: Database) -> None:
    _fill(db)
    with db.transaction(write=True) as session:
        rows = [_row(3, 20, consent="none"), _row(3, 21, consent="evaluate"), _row(3, 22)]
        result = insert_feedback_batch(session=session, device_id="d3", interactions=rows)
        batch = session.get(FeedbackBatch, result.batch_id)
        assert batch is not None and (batch.accepted, batch.not_stored) == (2, 1)
    with db.transaction() as session:
        stored = dict(
            session.execute(
                select(Interaction.id, Interaction.consent).where(
                    Interaction.id.in_([_row(3, n).id for n in (20, 21, 22)])
                )
            ).all()
        )
    assert stored == {_row(3, 21).id: "evaluate", _row(3, 22).id: "train"}


def test_erasing_by_date_keeps_what_came_later(db: Database) -> None:
    _fill(db)
    before = _everything(db)
    cutoff = T0 + timedelta(days=2, hours=12)  # d1's and d2's re-rated rows moved past T0
    with db.transaction(write=True) as session:
        erasure = erase_rows(
            session=session, scope=ErasureScope(before=cutoff), actor="retention",
            action="retention",
        )  # fmt: skip
        assert erasure.counts["interactions"] == 18 - 1  # d3's revised row arrived after
    after = _everything(db)
    assert {r[0] for r in after["interactions"]} == {_row(3, 0).id}
    assert after["devices"] == before["devices"]
