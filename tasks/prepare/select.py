"""Select interactions: new rows up to a settled watermark, rows of cycles that published
nothing (carried over), and a seeded replay of older rows."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Row, func, select, union
from sqlalchemy.orm import Session

from storage.models import DatasetSnapshot, Interaction, ModelVersion, TrainingRun, utcnow
from storage.repo.interactions import (
    fetch_by_seq,
    settled_watermark,
    stream_interactions,
    stream_keys,
)
from storage.repo.versions import PUBLISHED
from tasks.prepare.config import PrepareConfig
from tasks.prepare.records import rank


@dataclass
class Window:
    """Which rows a snapshot reads: after < seq <= upto, plus older seqs read again.

    `replay_seqs` holds both the carried-over rows (`carried` of them) and the replay sample;
    one list keeps a single older-rows fetch for the reader processes.
    """

    after: int
    upto: int
    new_count: int
    replay_seqs: list[int] = field(default_factory=list)
    carried: int = 0


def select_window(
    session: Session,
    *,
    after: int,
    config: PrepareConfig,
    settle_seconds: float,
    now: datetime | None = None,
    carry: bool = True,
) -> Window:
    """The new-row range since `after` (the last watermark), carried-over rows, and replay."""
    upto = max(after, settled_watermark(session=session, settle_seconds=settle_seconds, now=now))
    new_count = 0
    if upto > after:
        query = select(func.count()).where(Interaction.seq > after, Interaction.seq <= upto)
        new_count = int(session.scalar(query) or 0)
    carried = carry_over(session, before=after, config=config, now=now) if carry else []
    size = min(config.replay_max, math.ceil(config.replay_ratio * new_count))
    replay = (
        replay_sample(session, before=after, size=size, seed=config.seed, skip=set(carried))
        if size
        else []
    )
    return Window(after, upto, new_count, sorted(replay + carried), carried=len(carried))


def consumed_watermark(session: Session) -> int:
    """The highest seq that every student which has trained has a published version beyond.

    Per student: the watermark of the newest snapshot one of its published versions was
    trained on (0 if none). The lowest over the students wins, so a row one student was
    rejected on stays in the snapshots (shared by all students) until that student publishes
    a version trained on it; for the others it is one more replayed row.
    """
    published = (
        select(
            ModelVersion.student.label("student"),
            func.max(DatasetSnapshot.watermark).label("watermark"),
        )
        .join(DatasetSnapshot, ModelVersion.snapshot_id == DatasetSnapshot.id)
        .where(ModelVersion.status == PUBLISHED)
        .group_by(ModelVersion.student)
        .subquery()
    )
    trained = union(select(TrainingRun.student), select(ModelVersion.student)).subquery()
    query = select(func.min(func.coalesce(published.c.watermark, 0))).select_from(
        trained.outerjoin(published, published.c.student == trained.c.student)
    )
    return int(session.scalar(query) or 0)


def carry_over(
    session: Session, *, before: int, config: PrepareConfig, now: datetime | None = None
) -> list[int]:
    """Seqs of rows no published version was trained on yet (consumed < seq <= before).

    Their snapshot's cycle was rejected, failed or skipped; without this they would only come
    back through the replay sample, mostly never. Bounded by the config's age and row limits.
    """
    consumed = consumed_watermark(session)
    if config.carry_max_rows == 0 or before <= consumed:
        return []
    query = select(Interaction.seq).where(Interaction.seq > consumed, Interaction.seq <= before)
    if config.carry_max_age_days is not None:
        cutoff = (now or utcnow()) - timedelta(days=config.carry_max_age_days)
        query = query.where(Interaction.received_at >= cutoff)
    query = query.order_by(Interaction.seq.desc()).limit(config.carry_max_rows)
    return sorted(int(seq) for seq in session.scalars(query))


def replay_sample(
    session: Session, *, before: int, size: int, seed: int, skip: set[int] | None = None
) -> list[int]:
    """The `size` older rows (seq <= before, not in `skip`) with the lowest seeded rank."""
    heap: list[tuple[int, int]] = []  # (-rank, seq): a bounded max-heap keeps the lowest ranks
    for seq, row_id in stream_keys(session=session, upto=before):
        if skip and seq in skip:
            continue
        item = (-rank(str(row_id), seed, "replay"), seq)
        if len(heap) < size:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return sorted(seq for _, seq in heap)


def iter_window(session: Session, window: Window, *, chunk_size: int = 5000) -> Iterator[Row]:
    """The selected rows in seq order: replayed older ones first, then the new ones."""
    yield from fetch_by_seq(session=session, seqs=window.replay_seqs)
    yield from stream_interactions(
        session=session, after=window.after, upto=window.upto, chunk_size=chunk_size
    )
