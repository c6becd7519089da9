"""Reads behind the web page: feedback volume per day and evaluated quality per version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from storage.models import Evaluation, Interaction, ModelVersion, utcnow


@dataclass(frozen=True)
class DayVolume:
    """Interactions received on one UTC day from one source, and how many carry feedback."""

    day: date
    source: str
    interactions: int
    rated: int
    corrected: int


@dataclass(frozen=True)
class VersionScore:
    """The newest evaluation of one version of a student on one evaluation set."""

    student: str
    version: int
    eval_set: str
    label: str
    metrics: dict[str, float]
    created_at: datetime


def feedback_per_day(
    *, session: Session, days: int, now: datetime | None = None
) -> list[DayVolume]:
    """Rows received in the last `days` UTC days, per day and source, oldest first."""
    start = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=days - 1)
    # Day of the stored (UTC) timestamp: date() works on SQLite's text and PostgreSQL's.
    day = func.date(Interaction.received_at)
    if session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone("UTC", Interaction.received_at))
    query = (
        select(
            day.label("day"),
            Interaction.source,
            func.count(),
            func.sum(case((Interaction.rating.is_not(None), 1), else_=0)),
            func.sum(case((Interaction.correction.is_not(None), 1), else_=0)),
        )
        .where(Interaction.received_at >= start)
        .group_by(day, Interaction.source)
        .order_by(day, Interaction.source)
    )
    return [
        DayVolume(
            day=d if isinstance(d, date) else date.fromisoformat(str(d)),
            source=source,
            interactions=int(n),
            rated=int(rated or 0),
            corrected=int(corrected or 0),
        )
        for d, source, n, rated, corrected in session.execute(query)
    ]


def version_scores(*, session: Session, student: str | None = None) -> list[VersionScore]:
    """Per student, version and eval set, the newest evaluation: quality over versions.

    Only numeric metrics are kept; rows of the untouched base model have no version.
    """
    query = (
        select(Evaluation, ModelVersion.version)
        .join(ModelVersion, Evaluation.model_version_id == ModelVersion.id)
        .order_by(Evaluation.student, ModelVersion.version, Evaluation.created_at, Evaluation.id)
    )
    if student is not None:
        query = query.where(Evaluation.student == student)
    newest: dict[tuple[str, int, str], VersionScore] = {}
    for ev, version in session.execute(query):
        numeric = {
            k: float(v)
            for k, v in (ev.metrics or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        newest[(ev.student, version, ev.eval_set)] = VersionScore(
            student=ev.student,
            version=version,
            eval_set=ev.eval_set,
            label=ev.label,
            metrics=numeric,
            created_at=ev.created_at,
        )
    return list(newest.values())
