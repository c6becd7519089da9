"""Uncertain answers first: which stored answers to put before people for correction, and weights.

The web chat stores each answer's token-uncertainty summary (mean entropy, share of tokens
with p < 0.3, alerts) with its interaction. An answer the model was unsure of is the one a
correction teaches most, so those are queued for review first and may count more in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from storage.repo.web import MeasuredAnswer, measured_answers


@dataclass(frozen=True)
class UncertaintyRule:
    """When an answer counts as uncertain (any criterion), and how much it may weigh."""

    min_low_p_share: float = 0.3
    min_mean_entropy: float = 2.0
    min_alerts: int = 1
    max_weight: float = 2.0


@dataclass(frozen=True)
class UncertainAnswer:
    """An answer selected for correction, with its score (higher: less sure) and why."""

    answer: MeasuredAnswer
    score: float
    reasons: tuple[str, ...]


def reasons(summary: Mapping[str, Any] | None, rule: UncertaintyRule) -> tuple[str, ...]:
    """Which criteria of `rule` a summary meets (empty: a confident answer or none measured)."""
    if not summary or not summary.get("tokens"):
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
    if not summary or not summary.get("tokens"):
        return 1.0
    return min(rule.max_weight, 1.0 + float(summary.get("low_p_share") or 0.0))


def correction_queue(
    *, session: Session, rule: UncertaintyRule = UncertaintyRule(), limit: int = 50
) -> list[UncertainAnswer]:
    """Uncorrected answers that meet the rule, least sure first (low-p share, then entropy)."""
    picked = []
    for answer in measured_answers(session=session, uncorrected_only=True):
        why = reasons(answer.uncertainty, rule)
        if why:
            u = answer.uncertainty
            score = float(u.get("low_p_share") or 0) + float(u.get("mean_entropy") or 0) / 10
            picked.append(UncertainAnswer(answer, round(score, 4), why))
    picked.sort(key=lambda a: (-a.score, -a.answer.seq))
    return picked[:limit]
