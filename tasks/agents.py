"""Per-agent adapters over one base: each agent's slice of a snapshot, and where it starts from.

An interaction's `agent` (set by the phone) says which on-device agent answered. A cycle can
train one adapter per agent on that agent's records; an agent with too few records trains on
its own records plus the shared ones (records of no agent), so a small slice still gets a
useful adapter instead of overfitting a handful of rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Channel, DatasetSnapshot, Interaction, ModelVersion, TrainingRun
from storage.repo.catalog import agent_channel

STABLE = "stable"


@dataclass(frozen=True)
class AgentSlice:
    """A snapshot restricted to one agent: where it is, how many rows, and whether shared
    rows were added (the fallback for small slices)."""

    agent: str
    path: Path
    own_rows: int
    shared_rows: int
    fallback: bool

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
        return AgentSlice(agent, out_dir, own_train, 0, fallback)
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
    return AgentSlice(agent, out_dir, own_train, shared, fallback)


@dataclass(frozen=True)
class AgentPlan:
    """Whether an agent trains on a snapshot, from which adapter, against which stable."""

    skip: str | None
    stable_version: int | None
    stable_version_id: int | None
    warm_run_id: int | None  # training run whose adapter warm-starts this one


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
        )


def _channel_version(session: Any, student: str, channel: str) -> ModelVersion | None:
    row = session.scalar(select(Channel).where(Channel.student == student, Channel.name == channel))
    return row.model_version if row else None
