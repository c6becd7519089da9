"""Scores of a student's published versions over time: what the report's history plot draws."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Channel, Evaluation, ModelVersion

PUBLISHED = "published"


@dataclass(frozen=True)
class VersionScores:
    """The newest measurement of one published version on one eval set."""

    version: int
    eval_set: str  # key
    metrics: dict[str, float]
    stable: bool = False  # the version phones are told to run


def version_history(
    session: Session, student: str, stable_version_id: int | None = None
) -> list[VersionScores]:
    """Per published version and set, its latest stored scores; ordered by version number.

    Version numbers grow with publishing time, so this is time order. Scores come from every
    evaluation linked to the version (as stable, in a monthly re-check, or as a candidate).
    The stable version is `stable_version_id` when given, else the `stable` channel's.
    """
    stable_id = stable_version_id or session.scalar(
        select(Channel.model_version_id).where(Channel.student == student, Channel.name == "stable")
    )
    query = (
        select(Evaluation, ModelVersion.version, ModelVersion.id)
        .join(ModelVersion, Evaluation.model_version_id == ModelVersion.id)
        .where(Evaluation.student == student, ModelVersion.status == PUBLISHED)
        .order_by(Evaluation.created_at, Evaluation.id)
    )
    latest: dict[tuple[int, str], VersionScores] = {}
    for ev, version, version_id in session.execute(query):
        metrics = {k: float(v) for k, v in ev.metrics.items() if isinstance(v, int | float)}
        latest[(version, ev.eval_set)] = VersionScores(
            version, ev.eval_set, metrics, stable=version_id == stable_id
        )
    return sorted(latest.values(), key=lambda s: (s.version, s.eval_set))


@dataclass(frozen=True)
class HistoryAxis:
    """The history plot's x axis in time order and each set's value at every position."""

    labels: tuple[str, ...]  # "base", "v1", ..., "candidate"
    stable: int | None  # position of the stable version
    values: dict[str, dict[str, tuple[float | None, ...]]]  # metric -> set key -> per position


def history_axis(
    versions: list[VersionScores],
    current: dict[str, dict[str, dict[str, float]]],
    metrics: tuple[str, ...],
) -> HistoryAxis:
    """Base student, published versions by number, then this run's candidate.

    `current` holds this run's metrics per model label; without stored versions (no database
    yet) this run's stable model stands in as `stable`.
    """
    nums = sorted({v.version for v in versions})
    stable_nums = {v.version for v in versions if v.stable}
    labels = ["base", *(f"v{n}" for n in nums)]
    stand_in = "stable" in current and not stable_nums
    if stand_in:
        labels.append("stable")
    labels.append("candidate")
    stable = next((i for i, n in enumerate(nums, 1) if n in stable_nums), None)
    if stand_in:
        stable = len(labels) - 2
    keys = list(dict.fromkeys([*current.get("candidate", {}), *(v.eval_set for v in versions)]))
    values: dict[str, dict[str, tuple[float | None, ...]]] = {}
    for metric in metrics:
        values[metric] = {}
        for key in keys:
            by_num = {v.version: v.metrics.get(metric) for v in versions if v.eval_set == key}
            row = [current.get("base", {}).get(key, {}).get(metric)]
            row += [by_num.get(n) for n in nums]
            if stand_in:
                row.append(current["stable"].get(key, {}).get(metric))
            row.append(current.get("candidate", {}).get(key, {}).get(metric))
            values[metric][key] = tuple(row)
    return HistoryAxis(tuple(labels), stable, values)
