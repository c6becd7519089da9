"""Channel pointers (student + name -> version) and their audit trail of moves."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Channel, ChannelEvent, ModelVersion, utcnow


def get_channel(student: str, name: str, *, session: Session, lock: bool = False) -> Channel | None:
    """The channel `name` of `student`, or None; `lock` takes a row lock where supported."""
    query = select(Channel).where(Channel.student == student, Channel.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def move_channel(
    *,
    session: Session,
    student: str,
    name: str,
    to: ModelVersion,
    action: str,
    reason: str = "",
    actor: str = "pipeline",
) -> ChannelEvent | None:
    """Point channel `name` at `to` and record the move; None when it already pointed there."""
    channel = get_channel(student, name, session=session, lock=True)
    from_id = channel.model_version_id if channel else None
    if from_id == to.id:
        return None
    if channel is None:
        channel = Channel(student=student, name=name, model_version_id=to.id)
        session.add(channel)
    else:
        channel.model_version_id = to.id
        channel.updated_at = utcnow()
    event = ChannelEvent(
        student=student,
        channel=name,
        action=action,
        from_version_id=from_id,
        to_version_id=to.id,
        reason=reason,
        actor=actor,
    )
    session.add(event)
    session.flush()
    return event


def channel_events(
    student: str, *, session: Session, channel: str | None = None
) -> list[ChannelEvent]:
    """The audit trail of `student`, oldest first, optionally for one channel."""
    query = select(ChannelEvent).where(ChannelEvent.student == student).order_by(ChannelEvent.id)
    if channel is not None:
        query = query.where(ChannelEvent.channel == channel)
    return list(session.scalars(query))


def list_channels(*, session: Session, student: str | None = None) -> list[Channel]:
    """Channel pointers, by student then name."""
    query = select(Channel).order_by(Channel.student, Channel.name)
    if student is not None:
        query = query.where(Channel.student == student)
    return list(session.scalars(query))
