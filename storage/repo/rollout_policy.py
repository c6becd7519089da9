"""The written policy a rollout watcher applies to a canary's live quality.

Given a canary version and the stable one compared over the same days
(`storage.repo.live_quality.LiveQuality.compare`), it decides one of:

- **rollback**: some metric is clearly worse (its whole interval on the bad side of 0);
- **promote**: enough interactions, and on every metric the bad end of the interval is
  within the policy's tolerance ("no worse than stable");
- **widen**: not clearly worse, not yet shown no worse: more devices, to learn faster;
- **wait**: too few interactions to decide anything yet, or already at the widest step.

Every decision carries its numbers and reasons in one line, to be stored and shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from storage.db import Database
from storage.registry.rollouts import RolloutInfo
from storage.repo.live_quality import Difference, LiveQuality, VersionQuality

Action = Literal["rollback", "promote", "widen", "wait"]


@dataclass(frozen=True)
class RolloutPolicy:
    """When a canary is promoted, widened or rolled back."""

    # Interactions the canary needs (over the days it shares with stable) before promotion,
    # and before any step at all: a step on a handful of answers would be a guess.
    min_interactions: int = 200
    min_step_interactions: int = 50
    # Percent of devices at each step; the first is where a rollout starts.
    steps: tuple[int, ...] = (10, 50, 100)
    # How much worse than stable still counts as "no worse", per metric, in its own units.
    tolerance: dict[str, float] = field(
        default_factory=lambda: {
            "mean_rating": 0.10,  # rating points
            "thumbs_down": 0.03,  # share
            "corrections": 0.03,  # share
            "mean_entropy": 0.10,  # nats per token
        }
    )

    def next_step(self, percent: int) -> int | None:
        """The step after `percent`, or None at the widest one."""
        return next((s for s in self.steps if s > percent), None)


@dataclass(frozen=True)
class RolloutDecision:
    """What the watcher does with a canary, and why."""

    action: Action
    percent: int  # the canary's share of devices after the decision (0 when rolled back)
    reasons: list[str]

    def line(self, student: str, canary: str, stable: str) -> str:
        """`rollback tiny v3 (10 % → 0 %) vs v2: thumbs_down +0.080 [...] clearly worse`."""
        return f"{self.action} {student} v{canary} vs v{stable}: " + "; ".join(self.reasons)


def _holds(d: Difference, tolerance: float) -> bool:
    """The bad end of the interval is within the tolerance."""
    return d.high <= tolerance if d.worse_when == "higher" else d.low >= -tolerance


def _text(d: Difference) -> str:
    return f"{d.metric} {d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"


def decide(
    canary: VersionQuality,
    stable: VersionQuality,
    differences: list[Difference],
    percent: int,
    policy: RolloutPolicy | None = None,
) -> RolloutDecision:
    """The policy's decision for a canary now on `percent` % of devices."""
    policy = policy or RolloutPolicy()
    days = len(canary.days)
    evidence = (
        f"n={canary.interactions} vs {stable.interactions} over {days} shared "
        f"day{'' if days == 1 else 's'}"
    )
    worse = [d for d in differences if d.clearly_worse]
    if worse:
        reasons = [f"{_text(d)} clearly worse" for d in worse]
        return RolloutDecision("rollback", 0, [*reasons, evidence])
    if canary.interactions < policy.min_step_interactions:
        need = f"{canary.interactions} of {policy.min_step_interactions} interactions to decide"
        return RolloutDecision("wait", percent, [need, evidence])
    short = canary.interactions < policy.min_interactions
    unsure = [d for d in differences if not _holds(d, policy.tolerance.get(d.metric, 0.0))]
    if not short and not unsure and differences:
        held = ", ".join(_text(d) for d in differences)
        return RolloutDecision("promote", 100, [f"no worse than stable: {held}", evidence])
    why = (
        [f"{canary.interactions} of {policy.min_interactions} interactions"] if short else []
    ) + [f"{_text(d)} not yet within {policy.tolerance.get(d.metric, 0.0):g}" for d in unsure]
    if not differences:
        why.append("no metric to compare yet")
    wider = policy.next_step(percent)
    if wider is None:
        return RolloutDecision("wait", percent, [*why, evidence])
    return RolloutDecision("widen", wider, [f"{percent} % → {wider} %", *why, evidence])


def judge(
    database: Database, info: RolloutInfo, days: int = 14, policy: RolloutPolicy | None = None
) -> tuple[RolloutDecision, str]:
    """The policy's decision on a running rollout from its live feedback, and its line."""
    with database.transaction() as session:
        live = LiveQuality.read(session, days=days, model_name=info.student)
    canary, stable = str(info.version), str(info.stable_version)
    decision = decide(*live.compare(info.student, canary, stable), info.percent, policy)
    return decision, decision.line(info.student, canary, stable)
