"""Select interactions: new rows up to a settled watermark plus a seeded replay of older rows."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from storage.models import Interaction
from storage.repo.interactions import (
    fetch_by_seq,
    settled_watermark,
    stream_interactions,
    stream_keys,
)
from tasks.prepare.config import PrepareConfig
from tasks.prepare.records import rank


@dataclass
class Window:
    """Which rows a snapshot reads: after < seq <= upto, plus replayed older seqs."""

    after: int
    upto: int
    new_count: int
    replay_seqs: list[int] = field(default_factory=list)


def select_window(
    session: Session,
    *,
    after: int,
    config: PrepareConfig,
    settle_seconds: float,
    now: datetime | None = None,
) -> Window:
    """The new-row range since `after` (the last watermark) and the replay sample before it."""
    upto = max(after, settled_watermark(session=session, settle_seconds=settle_seconds, now=now))
    new_count = 0
    if upto > after:
        query = select(func.count()).where(Interaction.seq > after, Interaction.seq <= upto)
        new_count = int(session.scalar(query) or 0)
    size = min(config.replay_max, math.ceil(config.replay_ratio * new_count))
    replay = replay_sample(session, before=after, size=size, seed=config.seed) if size else []
    return Window(after=after, upto=upto, new_count=new_count, replay_seqs=replay)


def replay_sample(session: Session, *, before: int, size: int, seed: int) -> list[int]:
    """The `size` older rows (seq <= before) with the lowest seeded rank: same seed, same rows."""
    heap: list[tuple[int, int]] = []  # (-rank, seq): a bounded max-heap keeps the lowest ranks
    for seq, row_id in stream_keys(session=session, upto=before):
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
