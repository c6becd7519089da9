"""Preprocessing settings (part of a snapshot's fingerprint) and what a build reports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic.dataclasses import dataclass as config_dataclass

from tasks.config_base import STRICT

if TYPE_CHECKING:
    from tasks.prepare.summary import SnapshotSummary

SPLITS = ("train", "validation", "test")


@config_dataclass(frozen=True, config=STRICT)
class PrepareConfig:
    """How feedback becomes a dataset; every field is recorded with the snapshot."""

    min_chars: int = 2
    max_prompt_chars: int = 8000
    max_target_chars: int = 8000
    good_rating: int = 4  # responses rated at least this are trained on
    low_rating: int = 2  # responses rated at most this (and uncorrected) become negatives
    keep_unrated: bool = True
    replay_ratio: float = 0.2  # older rows replayed, as a share of the new rows
    replay_max: int = 50_000
    # Rows after the last snapshot a published version was trained on, but before the latest
    # snapshot (their cycle was rejected, failed or skipped), are taken again: the newest
    # `carry_max_rows`, received within `carry_max_age_days` (None: any age). 0 rows: off.
    carry_max_age_days: float | None = 30.0
    carry_max_rows: int = 50_000
    seed: int = 0
    train_ratio: float = 0.8
    validation_ratio: float = 0.1
    group_by: tuple[str, ...] = ("category", "model_name")
    group_cap: int | None = None  # most records per group (None: no cap)
    # Most of a snapshot one device may make up (None: no cap); a device is never cut
    # below device_cap_floor records, and snapshots from fewer than device_cap_min_devices
    # devices (a developer's own phone) are not capped.
    device_share_cap: float | None = 0.5
    device_cap_floor: int = 100
    device_cap_min_devices: int = 3
    system_prompt: str | None = None
    # A record whose answer the model was unsure of, or that a reviewer corrected, weighs
    # 1 + its share of low-confidence tokens, at most this (1.0: every record weighs 1).
    max_weight: float = 2.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.train_ratio <= 1 or not 0 <= self.validation_ratio <= 1:
            problems.append("train_ratio and validation_ratio must lie in [0, 1]")
        if self.train_ratio + self.validation_ratio > 1:
            problems.append("train_ratio + validation_ratio must not exceed 1")
        if self.min_chars < 0 or self.max_prompt_chars < 1 or self.max_target_chars < 1:
            problems.append("min_chars must be >= 0 and max_*_chars >= 1")
        if not 1 <= self.low_rating < self.good_rating <= 5:
            problems.append("need 1 <= low_rating < good_rating <= 5")
        if self.replay_ratio < 0 or self.replay_max < 0:
            problems.append("replay_ratio and replay_max must be >= 0")
        if self.carry_max_rows < 0 or (self.carry_max_age_days or 0) < 0:
            problems.append("carry_max_rows and carry_max_age_days must be >= 0")
        if self.group_cap is not None and self.group_cap < 1:
            problems.append("group_cap must be >= 1 or None")
        if self.device_share_cap is not None and not 0 < self.device_share_cap <= 1:
            problems.append("device_share_cap must lie in (0, 1] or be None")
        if self.device_cap_floor < 0 or self.device_cap_min_devices < 1:
            problems.append("device_cap_floor must be >= 0 and device_cap_min_devices >= 1")
        if not 1.0 <= self.max_weight <= 10.0:
            problems.append("max_weight must lie in [1, 10]")
        if not set(self.group_by) <= {"category", "model_name"}:
            problems.append("group_by may name only 'category' and 'model_name'")
        if problems:
            raise ValueError("invalid PrepareConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PrepareConfig:
        """Build from a dict (e.g. flow parameters), naming unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown PrepareConfig fields: {', '.join(unknown)}")
        values = dict(values)
        if "group_by" in values:
            values["group_by"] = tuple(values["group_by"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, stable across runs (fingerprinted)."""
        data = dataclasses.asdict(self)
        data["group_by"] = list(self.group_by)
        return data


@dataclass
class SnapshotInfo:
    """The outcome of `build_snapshot`: the snapshot used and why nothing new was built."""

    snapshot_id: int | None
    fingerprint: str | None
    path: Path | None
    split_sizes: dict[str, int] = field(default_factory=dict)
    new_records: int = 0
    skipped_reason: str | None = None  # "no new interactions" | "snapshot exists"
    watermark: int = 0
    filter_stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> SnapshotSummary:
        """The small JSON-ready summary flows pass around."""
        from tasks.prepare.summary import SnapshotSummary  # pydantic: kept out of the readers

        return SnapshotSummary(
            snapshot_id=self.snapshot_id,
            fingerprint=self.fingerprint,
            path=str(self.path) if self.path else None,
            split_sizes=dict(self.split_sizes),
            new_records=self.new_records,
            skipped_reason=self.skipped_reason,
            watermark=self.watermark,
            filter_stats=self.filter_stats,
        )
