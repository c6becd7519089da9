"""Web-chat storage: source and uncertainty columns, feedback per day, scores per version."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Interaction, ModelVersion
from storage.repo.devices import create_device
from storage.repo.evaluations import add_evaluation
from storage.repo.feedback import FeedbackRow, insert_feedback_batch
from storage.repo.web import feedback_per_day, version_scores

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def row(**extra: Any) -> FeedbackRow:
    fields = {"model_name": "m", "model_version": "1", "prompt": "p", "response": "r"}
    return FeedbackRow(id=uuid.uuid4(), client_created_at=NOW, **{**fields, **extra})


def test_source_defaults_to_phone_and_web_rows_keep_their_summary(db: Database) -> None:
    summary = {"tokens": 3, "mean_entropy": 1.5, "low_p_share": 0.33, "alerts": []}
    with db.transaction(write=True) as session:
        create_device(
            session=session, device_id="d", token_hash="h" * 64, platform="web", app_version="1"
        )
        insert_feedback_batch(
            session=session,
            device_id="d",
            interactions=[
                row(prompt="phone"),
                row(prompt="web", source="web", uncertainty=summary),
            ],
        )
    with db.transaction() as session:
        got = {r.prompt: r for r in session.scalars(select(Interaction))}
    assert (got["phone"].source, got["phone"].uncertainty) == ("phone", None)
    assert (got["web"].source, got["web"].uncertainty) == ("web", summary)


def test_feedback_per_day_counts_by_day_and_source(db: Database) -> None:
    today = datetime.now(UTC)
    yesterday = today - timedelta(days=1)
    with db.transaction(write=True) as session:
        create_device(
            session=session, device_id="d", token_hash="h" * 64, platform="web", app_version="1"
        )
        for when, rows in (
            (yesterday, [row(rating=5), row()]),
            (today, [row(source="web", correction="c"), row(source="web"), row(rating=1)]),
            (today - timedelta(days=40), [row()]),  # outside the window
        ):
            insert_feedback_batch(
                session=session, device_id="d", interactions=rows, received_at=when
            )
    with db.transaction() as session:
        volume = feedback_per_day(session=session, days=7, now=today)
    got = [(v.day, v.source, v.interactions, v.rated, v.corrected) for v in volume]
    assert got == [
        (yesterday.date(), "phone", 2, 1, 0),
        (today.date(), "phone", 1, 1, 0),
        (today.date(), "web", 2, 0, 1),
    ]
    assert all(isinstance(v.day, date) for v in volume)


def test_version_scores_keep_the_newest_evaluation_per_version_and_set(db: Database) -> None:
    with db.transaction(write=True) as session:
        ids = []
        for version in (1, 2):
            mv = ModelVersion(student="s", version=version, base_model="b", status="published")
            session.add(mv)
            session.flush()
            ids.append(mv.id)
        add_evaluation(
            session=session,
            student="s",
            label="candidate",
            eval_set="new",
            metrics={"perplexity": 12.0, "ok": True, "name": "x"},
            model_version_id=ids[0],
        )
        add_evaluation(
            session=session,
            student="s",
            label="live",
            eval_set="new",
            metrics={"perplexity": 11.0},
            model_version_id=ids[0],
        )
        add_evaluation(
            session=session,
            student="s",
            label="candidate",
            eval_set="new",
            metrics={"perplexity": 9.5, "bleu": 20},
            model_version_id=ids[1],
        )
        add_evaluation(
            session=session, student="s", label="base", eval_set="new", metrics={"perplexity": 15.0}
        )  # no version: not a point on the chart
    with db.transaction() as session:
        scores = version_scores(session=session)
    assert [(s.version, s.label, s.metrics) for s in scores] == [
        (1, "live", {"perplexity": 11.0}),
        (2, "candidate", {"perplexity": 9.5, "bleu": 20.0}),
    ]
