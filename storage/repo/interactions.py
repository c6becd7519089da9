"""Reading interactions for dataset building: settled watermark, chunked streams, by-seq fetch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from storage.models import Interaction, utcnow

# The columns a dataset needs; selecting them (not ORM objects) keeps streaming cheap.
RECORD_COLUMNS = (
    Interaction.seq,
    Interaction.id,
    Interaction.model_name,
    Interaction.model_version,
    Interaction.prompt,
    Interaction.response,
    Interaction.correction,
    Interaction.correction_source,
    Interaction.rating,
    Interaction.category,
    Interaction.source,
    Interaction.uncertainty,
    Interaction.consent,
)


def settled_watermark(
    *, session: Session, settle_seconds: float, now: datetime | None = None
) -> int:
    """The highest seq among rows received more than `settle_seconds` ago (0 when none).

    A PostgreSQL sequence value is taken at insert but visible at commit, so the newest seqs
    may still have gaps; rows that settled are safe to put behind a watermark.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=settle_seconds)
    query = select(func.max(Interaction.seq)).where(Interaction.received_at <= cutoff)
    return int(session.scalar(query) or 0)


def stream_interactions(
    *,
    session: Session,
    after: int,
    upto: int,
    chunk_size: int = 5000,
    stripe: tuple[int, int, int] | None = None,
) -> Iterator[Row]:
    """Rows with after < seq <= upto in seq order, fetched in chunks (server-side cursor).

    `stripe=(block, count, index)` keeps only seq blocks j = seq // block with
    j % count == index, so `count` readers can share one range without overlap.
    """
    stmt = select(*RECORD_COLUMNS).where(Interaction.seq > after, Interaction.seq <= upto)
    if stripe is not None:
        block, count, index = stripe
        stmt = stmt.where((Interaction.seq // block) % count == index)
    stmt = stmt.order_by(Interaction.seq).execution_options(yield_per=chunk_size)
    yield from session.execute(stmt)


def stream_keys(*, session: Session, upto: int, chunk_size: int = 20000) -> Iterator[Row]:
    """(seq, id) of rows with seq <= upto in seq order, in chunks: the cheap replay scan."""
    stmt = (
        select(Interaction.seq, Interaction.id)
        .where(Interaction.seq <= upto)
        .order_by(Interaction.seq)
        .execution_options(yield_per=chunk_size)
    )
    yield from session.execute(stmt)


def fetch_by_seq(*, session: Session, seqs: Iterable[int], chunk_size: int = 1000) -> Iterator[Row]:
    """Rows with the given seqs in seq order, queried in bounded IN-lists."""
    ordered = sorted(seqs)
    for start in range(0, len(ordered), chunk_size):
        part = ordered[start : start + chunk_size]
        stmt = select(*RECORD_COLUMNS).where(Interaction.seq.in_(part)).order_by(Interaction.seq)
        yield from session.execute(stmt)


def device_counts(
    *, session: Session, after: int, upto: int, seqs: Iterable[int]
) -> dict[str, int]:
    """Rows per device among after < seq <= upto and the given (replayed) seqs."""
    counts: dict[str, int] = {}
    query = (
        select(Interaction.device_id, func.count())
        .where(Interaction.seq > after, Interaction.seq <= upto)
        .group_by(Interaction.device_id)
    )
    for device, n in session.execute(query):
        counts[device] = counts.get(device, 0) + int(n)
    ordered = sorted(seqs)
    for start in range(0, len(ordered), 1000):
        part = ordered[start : start + 1000]
        query = (
            select(Interaction.device_id, func.count())
            .where(Interaction.seq.in_(part))
            .group_by(Interaction.device_id)
        )
        for device, n in session.execute(query):
            counts[device] = counts.get(device, 0) + int(n)
    return counts


def device_record_ids(
    *, session: Session, after: int, upto: int, seqs: Iterable[int], devices: Iterable[str]
) -> Iterator[tuple[str, str]]:
    """(device_id, record id as str) of these devices' rows in the same selection."""
    wanted = list(devices)
    if not wanted:
        return
    rows = select(Interaction.device_id, Interaction.id).where(Interaction.device_id.in_(wanted))
    ranged = rows.where(Interaction.seq > after, Interaction.seq <= upto)
    for device, record_id in session.execute(ranged.execution_options(yield_per=20_000)):
        yield device, str(record_id)
    ordered = sorted(seqs)
    for start in range(0, len(ordered), 1000):
        part = rows.where(Interaction.seq.in_(ordered[start : start + 1000]))
        for device, record_id in session.execute(part):
            yield device, str(record_id)
