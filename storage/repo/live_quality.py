"""Live quality per model version, from what users did with its answers.

Interactions carry the `model_name` and `model_version` that answered. Per version this
reads, over a window of days: the mean rating, the thumbs-down share (rating 1 or 2 of
those rated), the correction share, the answer length, and for web chat turns the mean
token entropy, each with a 95 % interval. Two versions are compared over the same days
only (the days both answered on), so a weekday or a holiday is not taken for a regression.

The intervals are normal approximations (Wilson's for shares): enough to tell "clearly
worse" from "not enough data yet", which is what a rollout decision needs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from storage.models import REVIEW_SOURCE, Interaction

Z95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """A mean or a share with its 95 % interval and the number of observations."""

    value: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 2) -> str:
        """`0.42 [0.31, 0.55] n=88`."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] n={self.n}"


@dataclass
class _Sample:
    """The observations of one version on one day."""

    ratings: list[int] = field(default_factory=list)
    corrected: list[bool] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)

    def extend(self, other: _Sample) -> None:
        self.ratings += other.ratings
        self.corrected += other.corrected
        self.lengths += other.lengths
        self.entropies += other.entropies


@dataclass(frozen=True)
class VersionQuality:
    """What users did with one version's answers over the days read."""

    model_name: str
    model_version: str
    interactions: int
    days: tuple[date, ...]
    mean_rating: Estimate | None
    thumbs_down: Estimate | None
    corrections: Estimate | None
    answer_chars: Estimate | None
    mean_entropy: Estimate | None

    def metrics(self) -> dict[str, Estimate | None]:
        """The estimates by name, in the order people read them."""
        return {
            "mean_rating": self.mean_rating,
            "thumbs_down": self.thumbs_down,
            "corrections": self.corrections,
            "answer_chars": self.answer_chars,
            "mean_entropy": self.mean_entropy,
        }


@dataclass(frozen=True)
class DailyQuality:
    """One version's quality over the days read, and on each of those days alone."""

    total: VersionQuality
    days: tuple[VersionQuality, ...]  # one per day it answered on, oldest first


@dataclass(frozen=True)
class Difference:
    """`candidate − reference` for one metric over the same days, with its 95 % interval."""

    metric: str
    delta: float
    low: float
    high: float
    worse_when: str  # "higher" or "lower": which direction is a regression

    @property
    def clearly_worse(self) -> bool:
        """The whole interval is on the bad side of 0."""
        return self.low > 0 if self.worse_when == "higher" else self.high < 0


# Which way is bad, per metric; answer length has no good direction and is only shown.
WORSE_WHEN = {
    "mean_rating": "lower",
    "thumbs_down": "higher",
    "corrections": "higher",
    "mean_entropy": "higher",
}


def mean_estimate(values: list[float]) -> Estimate | None:
    """The mean with a normal-approximation interval; None without observations."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def share_estimate(flags: list[bool]) -> Estimate | None:
    """A share with Wilson's interval (sensible at 0 %, 100 % and small n)."""
    n = len(flags)
    if n == 0:
        return None
    p = sum(flags) / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def _quality(name: str, version: str, by_day: dict[date, _Sample]) -> VersionQuality:
    total = _Sample()
    for sample in by_day.values():
        total.extend(sample)
    return VersionQuality(
        model_name=name,
        model_version=version,
        interactions=len(total.corrected),
        days=tuple(sorted(by_day)),
        mean_rating=mean_estimate([float(r) for r in total.ratings]),
        thumbs_down=share_estimate([r <= 2 for r in total.ratings]),
        corrections=share_estimate(total.corrected),
        answer_chars=mean_estimate([float(n) for n in total.lengths]),
        mean_entropy=mean_estimate(total.entropies),
    )


class LiveQuality:
    """Per-day samples of every version seen in a window; summaries and comparisons."""

    def __init__(self, samples: dict[tuple[str, str], dict[date, _Sample]]) -> None:
        self._samples = samples

    @classmethod
    def read(
        cls,
        session: Session,
        *,
        days: int = 14,
        model_name: str | None = None,
        model_versions: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> LiveQuality:
        """The interactions received in the last `days` days (of `model_name`, and of those
        `model_versions`, if given)."""
        since = (now or datetime.now(UTC)) - timedelta(days=days)
        query = select(
            Interaction.model_name,
            Interaction.model_version,
            Interaction.received_at,
            Interaction.rating,
            # A user's correction says the answer was wrong; a reviewer's, that someone looked.
            and_(
                Interaction.correction.is_not(None),
                func.coalesce(Interaction.correction_source, "user") != REVIEW_SOURCE,
            ),
            func.length(Interaction.response),
            Interaction.uncertainty,
        ).where(Interaction.received_at >= since)
        if model_name is not None:
            query = query.where(Interaction.model_name == model_name)
        if model_versions is not None:
            query = query.where(Interaction.model_version.in_(list(model_versions)))
        samples: dict[tuple[str, str], dict[date, _Sample]] = defaultdict(
            lambda: defaultdict(_Sample)
        )
        for name, version, received, rating, corrected, length, uncertainty in session.execute(
            query.execution_options(yield_per=5000)
        ):
            sample = samples[(name, version)][received.date()]
            if rating is not None:
                sample.ratings.append(int(rating))
            sample.corrected.append(bool(corrected))
            sample.lengths.append(int(length or 0))
            entropy = (uncertainty or {}).get("mean_entropy")
            if entropy is not None:
                sample.entropies.append(float(entropy))
        return cls({key: dict(by_day) for key, by_day in samples.items()})

    def versions(self) -> list[VersionQuality]:
        """Every version read, by model name then version."""
        return [_quality(n, v, by_day) for (n, v), by_day in sorted(self._samples.items())]

    def daily(self) -> list[DailyQuality]:
        """Every version read, by model name then version: over all days and per day."""
        return [
            DailyQuality(
                total=_quality(n, v, by_day),
                days=tuple(_quality(n, v, {d: by_day[d]}) for d in sorted(by_day)),
            )
            for (n, v), by_day in sorted(self._samples.items())
        ]

    def compare(
        self, model_name: str, candidate: str, reference: str
    ) -> tuple[VersionQuality, VersionQuality, list[Difference]]:
        """Both versions over the days both answered on, and candidate − reference per metric."""
        a = self._samples.get((model_name, candidate), {})
        b = self._samples.get((model_name, reference), {})
        shared = sorted(set(a) & set(b))
        qa = _quality(model_name, candidate, {d: a[d] for d in shared})
        qb = _quality(model_name, reference, {d: b[d] for d in shared})
        return qa, qb, list(_differences(qa, qb))


def _differences(a: VersionQuality, b: VersionQuality) -> Iterable[Difference]:
    """Per metric with a direction: the difference of two independent estimates."""
    ea, eb = a.metrics(), b.metrics()
    for metric, worse_when in WORSE_WHEN.items():
        x, y = ea[metric], eb[metric]
        if x is None or y is None:
            continue
        # Half-widths back to standard errors; Wilson's is close to normal away from 0/1.
        se = math.hypot((x.high - x.low) / (2 * Z95), (y.high - y.low) / (2 * Z95))
        delta = x.value - y.value
        yield Difference(metric, delta, delta - Z95 * se, delta + Z95 * se, worse_when)
