"""The rollout watcher: each pass applies the written policy to every running rollout."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from storage.db import get_database
from storage.registry import rollouts
from storage.repo.rollout_policy import RolloutDecision, RolloutPolicy, judge
from tasks.results import StageResult
from tasks.settings import with_pipeline_settings

ACTOR = "rollout-watch"


class WatchRow(StageResult):
    """One running rollout and what the pass did with it."""

    student: str
    """The student rolled out."""
    canary: int
    """The version on the cohort."""
    stable: int
    """The version everyone else runs."""
    action: str
    """rollback, promote, widen or wait."""
    percent: int
    """The cohort's share of devices after this pass."""
    line: str
    """The decision with its numbers and reasons (also stored with the step it took)."""


def _apply(student: str, decision: RolloutDecision, line: str) -> None:
    """Carry the decision out; each step stores `line` as its reason in the audit trail."""
    database = get_database()
    if decision.action == "rollback":
        rollouts.abort(database, student, reason=line, actor=ACTOR)
    elif decision.action == "promote":
        rollouts.promote(database, student, reason=line, actor=ACTOR)
    elif decision.action == "widen":
        rollouts.widen(database, student, decision.percent, reason=line, actor=ACTOR)


@flow(name="rollout-watch", log_prints=True)
@with_pipeline_settings
def rollout_watch(
    days: int = 14, policy: RolloutPolicy | None = None, dry_run: bool = False
) -> list[WatchRow]:
    """One pass: each running rollout's live quality against stable over the same days,
    the policy's decision (rollback, promote, widen or wait), applied unless `dry_run`."""
    policy = policy or RolloutPolicy()
    database = get_database()
    rows = []
    for info in rollouts.rollouts(database):
        if info.status != "active" or info.stable_version is None:
            continue
        decision, line = judge(database, info, days, policy)
        print(line)
        if not dry_run:
            _apply(info.student, decision, line)
        rows.append(
            WatchRow(
                student=info.student,
                canary=info.version,
                stable=info.stable_version,
                action=decision.action,
                percent=decision.percent,
                line=line,
            )
        )
    create_table_artifact(
        [r.model_dump() for r in rows] or [{"line": "no rollout running"}],
        key="rollout-watch",
        description="what the rollout watcher decided",
    )
    return rows
