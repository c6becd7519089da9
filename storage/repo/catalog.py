"""Read side of the model registry: stable releases, published files, version history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Channel, ChannelEvent, ModelVersion, Rollout


@dataclass(frozen=True)
class Release:
    """The version a channel points to, with what a phone needs to download it."""

    student: str
    version: int
    model_version_id: int
    base_model: str
    base_revision: str | None
    min_app_version: str | None
    published_at: datetime | None
    files: list[dict[str, Any]]
    agent: str | None = None  # set for an agent's adapter release (channel "<channel>:<agent>")


def catalog_state(*, session: Session) -> tuple[Any, ...]:
    """A cheap key that changes whenever a channel moves or a version is added or published.

    One round trip of aggregate sub-queries over small tables; callers cache whatever they
    render from the catalog under this key.
    """
    mv = ModelVersion
    query = select(
        select(func.max(ChannelEvent.id)).scalar_subquery(),
        select(func.max(Channel.updated_at)).scalar_subquery(),
        select(func.count(Channel.id)).scalar_subquery(),
        select(func.max(mv.id)).scalar_subquery(),
        select(func.count(mv.id)).where(mv.status == "published").scalar_subquery(),
        select(func.max(mv.published_at)).scalar_subquery(),
        # Rollouts change the answer too (started, widened, ended); each step writes a
        # channel event as well, this keeps the key right if one ever does not.
        select(func.max(Rollout.updated_at)).scalar_subquery(),
        select(func.count(Rollout.id)).where(Rollout.status == "active").scalar_subquery(),
    )
    return tuple(session.execute(query).one())


@dataclass(frozen=True)
class Canary:
    """A running rollout as the manifest needs it: who is in, and what they get."""

    rollout_id: int
    percent: int
    release: Release


def canary_releases(*, session: Session) -> dict[str, Canary]:
    """student -> its running rollout and the release it serves to the cohort."""
    mv = ModelVersion
    query = (
        select(Rollout.id, Rollout.percent, mv)
        .join(mv, mv.id == Rollout.model_version_id)
        .where(Rollout.status == "active", mv.status == "published")
    )
    return {
        row.student: Canary(
            rollout_id=rollout_id,
            percent=percent,
            release=Release(
                student=row.student,
                version=row.version,
                model_version_id=row.id,
                base_model=row.base_model,
                base_revision=row.base_revision,
                min_app_version=row.min_app_version,
                published_at=row.published_at,
                files=list(row.files or []),
            ),
        )
        for rollout_id, percent, row in session.execute(query)
    }


def agent_channel(channel: str, agent: str) -> str:
    """The channel an agent's adapter releases move on: "<channel>:<agent>"."""
    return f"{channel}:{agent}"


def channel_releases(
    *, session: Session, channel: str = "stable", agents: bool = False
) -> list[Release]:
    """For each student, the published version its `channel` points to (one query).

    With `agents`, instead every agent channel "<channel>:<agent>" of each student.
    """
    mv = ModelVersion
    query = (
        select(
            Channel.student,
            Channel.name,
            mv.version,
            mv.id,
            mv.base_model,
            mv.base_revision,
            mv.min_app_version,
            mv.published_at,
            mv.files,
        )
        .join(mv, mv.id == Channel.model_version_id)
        .where(
            Channel.name.startswith(f"{channel}:", autoescape=True)
            if agents
            else Channel.name == channel,
            mv.status == "published",
        )
        .order_by(Channel.student, Channel.name)
    )
    return [
        Release(
            student=student,
            version=version,
            model_version_id=version_id,
            base_model=base_model,
            base_revision=base_revision,
            min_app_version=min_app_version,
            published_at=published_at,
            files=list(files or []),
            agent=name[len(channel) + 1 :] if agents else None,
        )
        for (
            student,
            name,
            version,
            version_id,
            base_model,
            base_revision,
            min_app_version,
            published_at,
            files,
        ) in session.execute(query)
    ]


def published_file_paths(*, session: Session) -> set[str]:
    """Artifact-root-relative paths of every file of every published version."""
    query = select(ModelVersion.files).where(ModelVersion.status == "published")
    return {
        str(entry["path"])
        for files in session.scalars(query)
        for entry in files or []
        if isinstance(entry, dict) and entry.get("path") and not entry.get("url")
    }


def version_history(*, session: Session, student: str) -> list[ModelVersion]:
    """All versions of a student, newest first."""
    query = select(ModelVersion).where(ModelVersion.student == student)
    return list(session.scalars(query.order_by(ModelVersion.version.desc())))


def channel_pointers(*, session: Session, student: str) -> dict[str, int]:
    """Channel name -> model_version id for a student."""
    query = select(Channel.name, Channel.model_version_id).where(Channel.student == student)
    return {row.name: row.model_version_id for row in session.execute(query)}


def channel_events(*, session: Session, student: str) -> list[ChannelEvent]:
    """The promotion/rollback audit trail of a student, oldest first."""
    query = select(ChannelEvent).where(ChannelEvent.student == student)
    return list(session.scalars(query.order_by(ChannelEvent.id)))
