"""Per-agent adapters over one base: each agent's slice of a snapshot, and where it starts from.

An interaction's `agent` (set by the phone) says which on-device agent answered. A cycle can
train one adapter per agent on that agent's records; an agent with too few records trains on
its own records plus the shared ones (records of no agent), so a small slice still gets a
useful adapter instead of overfitting a handful of rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage.db import Database, get_database
from storage.layout import layout
from storage.models import Channel, DatasetSnapshot, Interaction, ModelVersion, TrainingRun
from storage.repo.catalog import agent_channel
from tasks.cycle import run_adapter
from tasks.prepare.summary import SnapshotSummary
from tasks.results import StageResult

if TYPE_CHECKING:
    pass

STABLE = "stable"


class AgentSlice(StageResult):
    """A snapshot restricted to one agent: where it is, how many rows, and whether shared
    rows were added (the fallback for small slices)."""

    agent: str
    """The agent."""
    path: Path
    """The sliced snapshot (absent when the agent has no training row)."""
    own_rows: int
    """The agent's own training rows."""
    shared_rows: int
    """Shared training rows (no agent) added by the fallback."""
    fallback: bool
    """True when the agent had fewer than the minimum rows and shared rows were added."""

    @property
    def detail(self) -> str:
        """One line for the cycle summary."""
        extra = f" + {self.shared_rows} shared (fallback)" if self.fallback else ""
        return f"agent {self.agent}: {self.own_rows} own training rows{extra}"


def agents_of(database: Database, record_ids: Iterable[str]) -> dict[str, str | None]:
    """Record id (interaction uuid as str) -> its agent, for the ids that are stored."""
    import uuid

    ids = [uuid.UUID(r) for r in record_ids]
    out: dict[str, str | None] = {}
    with database.transaction() as session:
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            query = select(Interaction.id, Interaction.agent).where(Interaction.id.in_(part))
            out.update({str(i): agent for i, agent in session.execute(query)})
    return out


def agent_slice(
    database: Database, snapshot_path: Path, agent: str, out_dir: Path, min_rows: int
) -> AgentSlice:
    """Write the agent's rows of every split to `out_dir` (a snapshot distill can read).

    When the agent has fewer than `min_rows` training rows, the shared rows (no agent) of
    each split are added; other agents' rows never are.
    """
    from tasks.prepare.store import load_snapshot

    splits = load_snapshot(snapshot_path)
    every_id = [i for split in splits.values() for i in split["id"]]
    owner = agents_of(database, every_id)
    own_train = sum(owner.get(i) == agent for i in splits["train"]["id"])
    fallback = own_train < min_rows
    keep = {agent, None} if fallback else {agent}
    out_dir = Path(out_dir)
    if not any(owner.get(i) in keep for i in splits["train"]["id"]):
        # Nothing to train on (datasets cannot load back an empty saved split): no folder.
        return AgentSlice(
            agent=agent, path=out_dir, own_rows=own_train, shared_rows=0, fallback=fallback
        )
    shared = 0
    sliced: dict[str, Any] = {}
    for name, split in splits.items():
        picked = [n for n, i in enumerate(split["id"]) if owner.get(i) in keep]
        if not picked and name != "train":
            # No row of this agent in an evaluation split: score on the whole split rather
            # than on nothing (datasets cannot load back an empty saved split either).
            picked = list(range(len(split)))
        if name == "train":
            shared = sum(owner.get(split["id"][n]) is None for n in picked)
        sliced[name] = split.select(picked)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    from datasets import DatasetDict

    DatasetDict(sliced).save_to_disk(str(out_dir))
    negatives = Path(snapshot_path) / "negatives"
    if negatives.is_dir():  # preference data: kept whole (ratings are not per agent yet)
        shutil.copytree(negatives, out_dir / "negatives")
    return AgentSlice(
        agent=agent, path=out_dir, own_rows=own_train, shared_rows=shared, fallback=fallback
    )


class AgentPlan(StageResult):
    """Whether an agent trains on a snapshot, from which adapter, against which stable."""

    skip: str | None
    """Why the agent is skipped on this snapshot; None when it trains."""
    stable_version: int | None
    """Version number on the agent's stable channel; None before its first promotion."""
    stable_version_id: int | None
    """ModelVersion id of that version."""
    warm_run_id: int | None
    """Training run whose adapter warm-starts this one (the agent's stable, else the student's)."""
    stable_adapter_dir: str | None
    """That run's adapter: the candidate warm-starts from it and is compared with it."""


def agent_plan(database: Database, student: str, agent: str, snapshot_id: int) -> AgentPlan:
    """The agent's stable adapter (its channel), else the student's; skip a repeated snapshot."""
    with database.transaction() as session:
        if session.get(DatasetSnapshot, snapshot_id) is None:
            raise ValueError(f"unknown snapshot id {snapshot_id}")
        existing = session.scalar(
            select(ModelVersion.version).where(
                ModelVersion.student == student,
                ModelVersion.agent == agent,
                ModelVersion.snapshot_id == snapshot_id,
                ModelVersion.status != "failed",
            )
        )
        stable = _channel_version(session, student, agent_channel(STABLE, agent))
        start = stable or _channel_version(session, student, STABLE)
        run_id = start.training_run_id if start else None
        run = session.get(TrainingRun, run_id) if run_id is not None else None
        return AgentPlan(
            skip=(
                f"agent {agent} v{existing} was already built from snapshot {snapshot_id}"
                if existing is not None
                else None
            ),
            stable_version=stable.version if stable else None,
            stable_version_id=stable.id if stable else None,
            warm_run_id=run.id if run else None,
            stable_adapter_dir=run_adapter(run) if run else None,
        )


def _channel_version(session: Any, student: str, channel: str) -> ModelVersion | None:
    row = session.scalar(select(Channel).where(Channel.student == student, Channel.name == channel))
    return row.model_version if row else None


# The cycle's steps for one agent: plain functions, wrapped as Prefect tasks in
# tasks/cycle_tasks.py through tasks/target.py (flows/perpetual.py runs them).


def slice_for_agent(
    student: str, agent: str, snapshot: SnapshotSummary, min_rows: int
) -> AgentSlice:
    """The agent's rows of the cycle's snapshot (with shared rows when it has too few)."""
    if snapshot.snapshot_id is None or snapshot.path is None or snapshot.fingerprint is None:
        raise ValueError("no snapshot to slice")
    # The folder name is the evaluation set's key (test:<name>): unique per snapshot and slice,
    # so scores cached for one agent's test rows are never read back for another's.
    name = f"{snapshot.fingerprint[:24]}-{agent}-min{min_rows}"
    out = layout().training_run("agents", f"{student}-{agent}", snapshot.snapshot_id) / name
    return agent_slice(get_database(), Path(snapshot.path), agent, out, min_rows)


def plan_agent(student: str, agent: str, snapshot_id: int) -> AgentPlan:
    """agent_plan on the configured database."""
    return agent_plan(get_database(), student, agent, snapshot_id)
