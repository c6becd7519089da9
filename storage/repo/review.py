"""The review queue: stored answers people should correct, least sure first, and the corrections.

The web chat stores each answer's token-uncertainty summary (mean entropy, share of tokens
with p < 0.3, alerts) with its interaction; a phone's answer carries none, but a low rating
(thumbs down) says as much. An answer the model was unsure of, or that its user rated low,
is the one a correction teaches most. Devices an operator made reviewers (`distillery
devices grant reviewer ID`) read this queue and write corrections; a correction is stored
on the interaction as a user's would be, with `correction_source = "review"`, the reviewer
in `reviewed_by`, the earlier values in `interaction_revisions`, and a new seq, so the
next snapshot takes the row again. The prepare stage weighs such records by `weight`
(tasks/prepare/uncertain.py).

Only rows whose user consented to any use (`train`) are offered: a reviewer is a person
reading other people's chats, which evaluation-only consent does not cover.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from storage.models import REVIEW_SOURCE, FeedbackBatch, Interaction, utcnow
from storage.repo.feedback import next_seq, record_revision


@dataclass(frozen=True)
class UncertaintyRule:
    """When an answer counts as uncertain (any criterion), and how much it may weigh."""

    min_low_p_share: float = 0.3
    min_mean_entropy: float = 2.0
    min_alerts: int = 1
    max_weight: float = 2.0


def measured(summary: Mapping[str, Any] | None) -> bool:
    """Whether a summary measured any token (phones' answers and JSON null carry none)."""
    return isinstance(summary, Mapping) and bool(summary.get("tokens"))


def reasons(summary: Mapping[str, Any] | None, rule: UncertaintyRule) -> tuple[str, ...]:
    """Which criteria of `rule` a summary meets (empty: a confident answer or none measured)."""
    if summary is None or not measured(summary):
        return ()
    out = []
    share = float(summary.get("low_p_share") or 0.0)
    entropy = float(summary.get("mean_entropy") or 0.0)
    alerts = sum(int(v) for v in (summary.get("alert_counts") or {}).values())
    if share >= rule.min_low_p_share:
        out.append(
            f"{share:.0%} of tokens had p < {summary.get('thresholds', {}).get('low_p', 0.3)}"
        )
    if entropy >= rule.min_mean_entropy:
        out.append(f"mean entropy {entropy:.2f} nats")
    if alerts >= rule.min_alerts:
        out.append(f"{alerts} alert(s)")
    return tuple(out)


def weight(summary: Mapping[str, Any] | None, rule: UncertaintyRule = UncertaintyRule()) -> float:
    """A training weight in [1, max_weight]: 1 + the share of low-confidence tokens."""
    if summary is None or not measured(summary):
        return 1.0
    return min(rule.max_weight, 1.0 + float(summary.get("low_p_share") or 0.0))


def uncertainty_score(summary: Mapping[str, Any] | None) -> float:
    """How unsure an answer was (higher: less sure): low-p share + mean entropy / 10."""
    if summary is None or not measured(summary):
        return 0.0
    share = float(summary.get("low_p_share") or 0.0)
    return round(share + float(summary.get("mean_entropy") or 0.0) / 10, 4)


@dataclass(frozen=True)
class ReviewItem:
    """An answer offered for review: what was asked and answered, and why it is offered."""

    seq: int
    id: str
    source: str
    model_name: str
    model_version: str
    prompt: str
    response: str
    rating: int | None
    received_at: datetime
    uncertainty: dict[str, Any] | None
    score: float
    reasons: tuple[str, ...]

    @property
    def low_p_share(self) -> float | None:
        """Share of the answer's tokens with a low probability (None: not measured)."""
        u = self.uncertainty
        return float(u.get("low_p_share") or 0.0) if u is not None and measured(u) else None

    @property
    def mean_entropy(self) -> float | None:
        """Mean token entropy in nats (None: not measured)."""
        u = self.uncertainty
        if u is None or not measured(u) or u.get("mean_entropy") is None:
            return None
        return float(u["mean_entropy"])


def review_queue(
    *,
    session: Session,
    rule: UncertaintyRule = UncertaintyRule(),
    low_rating: int = 2,
    limit: int = 50,
    scan: int = 5000,
) -> list[ReviewItem]:
    """Uncorrected answers that are uncertain (per `rule`) or rated `low_rating` or lower.

    The least sure first (low-p share, then entropy), then the lowest rated, then the
    newest. Read among the newest `scan` candidates: web chat turns and low-rated rows
    whose user consented to training and that nobody corrected yet.
    """
    query = (
        select(
            Interaction.seq,
            Interaction.id,
            Interaction.source,
            Interaction.model_name,
            Interaction.model_version,
            Interaction.prompt,
            Interaction.response,
            Interaction.rating,
            Interaction.received_at,
            Interaction.uncertainty,
        )
        .where(
            Interaction.correction.is_(None),
            Interaction.consent == "train",
            # Only web chat turns carry a summary (a phone's is JSON null, not SQL NULL).
            or_(Interaction.source == "web", Interaction.rating <= low_rating),
        )
        .order_by(Interaction.seq.desc())
        .limit(scan)
    )
    picked = []
    for r in session.execute(query):
        summary = r.uncertainty if isinstance(r.uncertainty, dict) else None
        why = reasons(summary, rule)
        if r.rating is not None and r.rating <= low_rating:
            why = (*why, f"rated {r.rating} of 5")
        if not why:
            continue
        picked.append(
            ReviewItem(
                seq=r.seq,
                id=str(r.id),
                source=r.source,
                model_name=r.model_name,
                model_version=r.model_version,
                prompt=r.prompt,
                response=r.response,
                rating=r.rating,
                received_at=r.received_at,
                uncertainty=summary,
                score=uncertainty_score(summary),
                reasons=why,
            )
        )
    picked.sort(key=lambda a: (-a.score, a.rating if a.rating is not None else 6, -a.seq))
    return picked[:limit]


class NotReviewable(Exception):
    """The interaction exists but takes no review correction; `reason` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reviewed:
    """A stored review correction."""

    interaction_id: uuid.UUID
    seq: int
    reviewed_by: str
    reviewed_at: datetime


def store_review(
    *,
    session: Session,
    interaction_id: uuid.UUID,
    correction: str,
    reviewer: str,
    now: datetime | None = None,
) -> Reviewed:
    """Store a reviewer's correction on an uncorrected interaction that allows training.

    As an update from a device: the earlier values go to `interaction_revisions` (its
    `device_id` and batch are the reviewer's) and the row takes a new seq and arrival time,
    so the next snapshot reads it as new. The row's own device keeps it: its later
    updates that carry no correction keep the reviewer's (storage/repo/feedback.py).
    Raises LookupError for an unknown (or erased) id and NotReviewable for a row that was
    corrected already or whose user allowed evaluation only.
    """
    now = now or utcnow()
    row = session.execute(
        select(
            Interaction.seq,
            Interaction.rating,
            Interaction.correction,
            Interaction.correction_source,
            Interaction.reviewed_by,
            Interaction.consent,
            Interaction.client_updated_at,
            Interaction.received_at,
        )
        .where(Interaction.id == interaction_id)
        .with_for_update()
    ).first()
    if row is None:
        raise LookupError(f"no interaction {interaction_id}")
    if row.correction is not None:
        by = "a reviewer" if row.correction_source == REVIEW_SOURCE else "its user"
        raise NotReviewable("corrected", f"interaction {interaction_id} was corrected by {by}")
    if row.consent != "train":
        raise NotReviewable(
            "consent", f"the user of interaction {interaction_id} allowed evaluation only"
        )
    batch = uuid.uuid4()
    session.execute(
        insert(FeedbackBatch).values(
            id=batch,
            device_id=reviewer,
            received_at=now,
            accepted=0,
            duplicates=0,
            updated=1,
            not_stored=0,
        )
    )
    record_revision(
        session,
        interaction_id=interaction_id,
        row=row,
        device_id=reviewer,
        replaced_at=now,
        batch_id=batch,
    )
    session.execute(
        update(Interaction)
        .where(Interaction.seq == row.seq)
        .values(
            seq=next_seq(session),
            correction=correction,
            correction_source=REVIEW_SOURCE,
            reviewed_by=reviewer,
            received_at=now,
        )
    )
    seq = session.scalar(select(Interaction.seq).where(Interaction.id == interaction_id))
    return Reviewed(interaction_id, int(seq or 0), reviewer, now)
