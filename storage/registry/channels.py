"""Promotion, rollback and history of channel pointers; the same for every registry backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import ChannelEvent, ModelVersion
from storage.registry.files import role_sizes
from storage.registry.types import (
    ChannelMove,
    HistoryEntry,
    NotPublishedError,
    RegistryError,
    UnknownVersionError,
    VersionInfo,
    check_student,
)
from storage.repo import channels as channel_repo
from storage.repo import versions as version_repo

T = TypeVar("T")


def in_write_transaction(database: Database, work: Callable[[Session], T], attempts: int = 3) -> T:
    """Run `work` in one write transaction, retried when a concurrent writer wins a unique key."""
    for attempt in range(attempts):
        try:
            with database.transaction(write=True) as session:
                return work(session)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def servable(student: str, version: int, *, session: Session) -> ModelVersion:
    """The row of a version a channel may point at, or a clear error why not."""
    row = version_repo.get_version(student, version, session=session)
    if row is None:
        raise UnknownVersionError(f"{student} has no version {version}")
    if row.status != version_repo.PUBLISHED:
        raise NotPublishedError(
            f"{student} version {version} is {row.status!r}, not 'published': "
            "a channel may only point at a published version"
        )
    return row


def promote(
    database: Database,
    student: str,
    version: int,
    *,
    channel: str = "stable",
    reason: str = "",
    actor: str = "pipeline",
) -> ChannelMove:
    """Point `channel` of `student` at a published `version`, with an audit row."""
    check_student(student)

    def work(session: Session) -> ChannelMove:
        row = servable(student, version, session=session)
        return _move(session, student, channel, row, "promote", reason, actor)

    return in_write_transaction(database, work)


def rollback(
    database: Database,
    student: str,
    *,
    to_version: int | None = None,
    channel: str = "stable",
    reason: str = "",
    actor: str = "cli",
) -> ChannelMove:
    """Move `channel` back to its previous version (from the audit trail) or to `to_version`."""
    check_student(student)

    def work(session: Session) -> ChannelMove:
        current = channel_repo.get_channel(student, channel, session=session, lock=True)
        if current is None:
            raise RegistryError(f"{student} has no {channel!r} channel: nothing to roll back")
        if to_version is not None:
            row = servable(student, to_version, session=session)
        else:
            events = channel_repo.channel_events(student, session=session, channel=channel)
            row = _previous(session, student, channel, events, current.model_version_id)
        return _move(session, student, channel, row, "rollback", reason, actor)

    return in_write_transaction(database, work)


def _previous(
    session: Session, student: str, channel: str, events: list[ChannelEvent], current_id: int
) -> ModelVersion:
    """The version the channel pointed at before the current one, skipping rolled-back ones.

    Replays the trail as a stack: a promotion pushes, a rollback pops back to its target, so
    rolling back twice walks further into the past instead of returning to the bad version.
    """
    stack: list[int] = []
    for event in events:
        if event.action == "rollback" and event.to_version_id in stack:
            del stack[len(stack) - stack[::-1].index(event.to_version_id) :]
        elif not stack or stack[-1] != event.to_version_id:
            stack.append(event.to_version_id)
    for version_id in reversed(stack):
        if version_id == current_id:
            continue
        row = version_repo.get_version_by_id(version_id, session=session)
        if row is not None and row.status == version_repo.PUBLISHED:
            return row
    raise RegistryError(
        f"{student} {channel!r} has no earlier published version to roll back to; "
        "name one with --to VERSION"
    )


def _move(
    session: Session,
    student: str,
    channel: str,
    row: ModelVersion,
    action: str,
    reason: str,
    actor: str,
) -> ChannelMove:
    current = channel_repo.get_channel(student, channel, session=session, lock=True)
    before = (
        version_repo.get_version_by_id(current.model_version_id, session=session)
        if current
        else None
    )
    event = channel_repo.move_channel(
        session=session,
        student=student,
        name=channel,
        to=row,
        action=action,
        reason=reason,
        actor=actor,
    )
    return ChannelMove(
        student=student,
        channel=channel,
        action=action,
        from_version=before.version if before else None,
        to_version=row.version,
        moved=event is not None,
        reason=reason,
        actor=actor,
    )


def history(database: Database, student: str, *, channel: str | None = None) -> list[HistoryEntry]:
    """Every promotion and rollback of `student`, oldest first, with version numbers."""
    with database.transaction() as session:
        events = channel_repo.channel_events(student, session=session, channel=channel)
        numbers = {
            v.id: v.version for v in version_repo.list_versions(session=session, student=student)
        }
        return [
            HistoryEntry(
                at=e.created_at,
                channel=e.channel,
                action=e.action,
                from_version=numbers.get(e.from_version_id) if e.from_version_id else None,
                to_version=numbers[e.to_version_id],
                reason=e.reason,
                actor=e.actor,
            )
            for e in events
        ]


def list_versions(database: Database, student: str | None = None) -> list[VersionInfo]:
    """Versions with the channels pointing at them, newest first per student."""
    with database.transaction() as session:
        pointers: dict[int, list[str]] = {}
        for ch in channel_repo.list_channels(session=session, student=student):
            pointers.setdefault(ch.model_version_id, []).append(ch.name)
        return [
            VersionInfo(
                student=v.student,
                version=v.version,
                status=v.status,
                channels=tuple(pointers.get(v.id, [])),
                base_model=v.base_model,
                teacher=v.teacher,
                strategy=v.strategy,
                files=len(v.files or []),
                size=sum(int(f.get("size", 0)) for f in v.files or []),
                created_at=v.created_at,
                published_at=v.published_at,
                agent=v.agent,
                role_sizes=role_sizes(v.files or []),
                run_metadata=dict(v.runtime or {}),
            )
            for v in version_repo.list_versions(session=session, student=student)
        ]
