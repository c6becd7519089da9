"""Cap any one device's share of a snapshot, so a flood from one phone cannot dominate it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.repo.interactions import device_counts, device_record_ids
from tasks.prepare.config import PrepareConfig
from tasks.prepare.records import rank
from tasks.prepare.select import Window

DROP_REASON = "device_share_cap"


def share_cap(counts: dict[str, int], share: float, floor: int) -> int | None:
    """Most rows one device may keep: the largest c with c <= share * sum(min(n, c)).

    That c keeps every capped device at no more than `share` of the capped total. It is at
    least `floor`, so a small snapshot from few devices is never emptied; None: no cap bites.
    """
    if not counts:
        return None
    low, high = 0, max(counts.values())
    while low < high:  # the condition holds on an interval [0, c*]: binary search its end
        mid = (low + high + 1) // 2
        if mid <= share * sum(min(n, mid) for n in counts.values()):
            low = mid
        else:
            high = mid - 1
    cap = max(low, floor)
    return cap if cap < max(counts.values()) else None


def over_cap_ids(session: Session, window: Window, config: PrepareConfig) -> set[str]:
    """Record ids to leave out: each over-cap device keeps its `cap` lowest-ranked rows.

    The rank is seeded by record id, so the same rows are kept whatever order they came in.
    """
    if config.device_share_cap is None:
        return set()
    seqs = window.replay_seqs
    counts = device_counts(session=session, after=window.after, upto=window.upto, seqs=seqs)
    if len(counts) < config.device_cap_min_devices:
        return set()
    cap = share_cap(counts, config.device_share_cap, config.device_cap_floor)
    if cap is None:
        return set()
    heavy = [d for d, n in counts.items() if n > cap]
    ranked: dict[str, list[tuple[int, str]]] = {d: [] for d in heavy}
    rows = device_record_ids(
        session=session, after=window.after, upto=window.upto, seqs=seqs, devices=heavy
    )
    for device, record_id in rows:
        ranked[device].append((rank(record_id, config.seed, "device"), record_id))
    dropped: set[str] = set()
    for items in ranked.values():
        items.sort()
        dropped.update(record_id for _, record_id in items[cap:])
    return dropped
