"""The pure per-row step: rating check, target choice, text checks, PII scrub, hashes."""

from __future__ import annotations

from typing import Any, NamedTuple

from storage.models import REVIEW_SOURCE
from tasks.prepare.config import PrepareConfig
from tasks.prepare.pii import scrub_pii
from tasks.prepare.quality import check_rating, check_text
from tasks.prepare.records import choose_target, clean, hash_normalized, normalize, pair_key
from tasks.prepare.uncertain import UncertaintyRule, record_weight


class Examined(NamedTuple):
    """A row that passed the per-row checks: cleaned texts plus its hashes (plain values)."""

    record_id: str
    kind: str  # "train" | "negative"
    source: str  # "correction" | "response" | "low_rating_no_correction"
    prompt: str
    target: str
    prompt_hash: str
    pair_key: int
    category: str | None
    model_name: str
    model_version: str
    rating: int | None
    corrected_response: str | None = None  # the model's answer when a user corrected it
    consent: str = "train"  # "evaluate": its user allowed held-out checks, never training
    corrected_by: str | None = None  # who wrote a correction target: "user" or "review"
    weight: float = 1.0  # 1 + low-confidence share for uncertain answers and review corrections


def examine(row: Any, config: PrepareConfig, pii: dict[str, int]) -> Examined | str:
    """Examined record, or the drop reason; PII found is added to `pii`.

    Needs nothing but the row, so it can run in another process than the ordered steps
    (dedupe, split, cap) that follow.
    """
    if reason := check_rating(row.rating):
        return reason
    kind, target, source = choose_target(row.response, row.correction, row.rating, config)
    if kind == "drop" or target is None or source is None:
        return source or "empty"
    max_prompt, max_target = config.max_prompt_chars, config.max_target_chars
    reason = check_text(row.prompt, min_chars=config.min_chars, max_chars=max_prompt)
    reason = reason or check_text(target, min_chars=config.min_chars, max_chars=max_target)
    if reason:
        return reason
    prompt = scrub_pii(clean(row.prompt), pii)
    target = scrub_pii(clean(target), pii)
    corrected = corrected_by = None
    if source == "correction":
        review = getattr(row, "correction_source", None) == REVIEW_SOURCE
        corrected_by = REVIEW_SOURCE if review else "user"
        if isinstance(row.response, str) and row.response.strip():
            corrected = scrub_pii(clean(row.response), pii)
    weight, uncertainty = 1.0, getattr(row, "uncertainty", None)
    if uncertainty is not None or corrected_by == REVIEW_SOURCE:  # phones' rows skip this
        rule = UncertaintyRule(max_weight=config.max_weight)
        weight = record_weight(uncertainty, corrected_by, rule)
    normalized_prompt = normalize(prompt)
    # Negatives flip the low bit so they dedupe apart from trainable pairs.
    key = pair_key(normalized_prompt, normalize(target)) ^ (kind == "negative")
    return Examined(
        str(row.id),
        kind,
        source,
        prompt,
        target,
        hash_normalized(normalized_prompt),
        key,
        row.category,
        row.model_name,
        row.model_version,
        row.rating,
        corrected,
        getattr(row, "consent", None) or "train",
        corrected_by,
        weight,
    )
