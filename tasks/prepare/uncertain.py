"""Uncertain answers and reviewers' corrections weigh more in training.

Which answers people should correct, least sure first, is decided in storage
(`storage/repo/review.py`): the service reads that queue for its reviewers, and serving may
import storage but not tasks. The rule and the queue are re-exported here, beside what the
prepare stage adds: a record's training weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storage.models import REVIEW_SOURCE
from storage.repo.review import (
    ReviewItem,
    UncertaintyRule,
    reasons,
    review_queue,
    uncertainty_score,
    weight,
)

__all__ = [
    "ReviewItem",
    "UncertaintyRule",
    "reasons",
    "record_weight",
    "review_queue",
    "uncertainty_score",
    "weight",
]


DEFAULT_RULE = UncertaintyRule()


def record_weight(
    uncertainty: Any, correction_source: str | None, rule: UncertaintyRule = DEFAULT_RULE
) -> float:
    """The weight of a record in training: `1 + low-confidence share`, at most `max_weight`.

    For an answer the model was unsure of (it meets `rule`) and for a reviewer's correction,
    whose answer was offered for review as uncertain or low-rated; 1.0 for every other
    record, and for any record whose answer carries no measurement (a phone's).
    """
    summary = uncertainty if isinstance(uncertainty, Mapping) else None
    if correction_source == REVIEW_SOURCE or reasons(summary, rule):
        return weight(summary, rule)
    return 1.0
