"""The teacher's own LoRA: train it on the feedback, record it, hand it to later cycles."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.artifact_store import ArtifactMissingError, artifact_store
from storage.db import get_database
from storage.layout import Layout, layout
from storage.models import DatasetSnapshot, Interaction
from tasks.distill.config import DistillConfig, DistillResult
from tasks.models.remote import remote_teacher
from tasks.prepare.summary import SnapshotSummary
from tasks.results import StageResult


def teacher_pointer(teacher: str, artifact_root: Path | None = None) -> Path:
    """Where the newest fine-tuned adapter of `teacher` is recorded (a small JSON file)."""
    if artifact_root is None:
        return layout().teacher_pointer(teacher)
    return Layout(layout().data_dir, artifact_root).teacher_pointer(teacher)


def read_pointer(teacher: str) -> dict[str, Any] | None:
    """The recorded adapter of `teacher`, None when there is none or its folder is gone."""
    store = artifact_store()
    pointer = store.refresh(teacher_pointer(teacher))  # another host may have moved it on
    if not pointer.is_file():
        return None
    recorded = dict(json.loads(pointer.read_text()))
    # Recorded relative to the artifact root (older pointers: absolute), like database rows.
    adapter = layout().resolve(recorded["adapter_dir"])
    try:
        store.fetch(adapter)
    except ArtifactMissingError:
        return None
    if not (adapter / "adapter_config.json").is_file():
        return None
    return {**recorded, "adapter_dir": str(adapter)}


class TeacherChoice(StageResult):
    """The teacher a cycle distills from: a preset and, maybe, its fine-tuned adapter."""

    preset: str
    """The teacher's model preset."""
    adapter_dir: str | None
    """Its bi-weekly fine-tuned LoRA; None for the plain preset."""
    label: str
    """How versions record the teacher (the preset, plus the adapter's snapshot)."""


class TeacherPlan(StageResult):
    """Whether the teacher is fine-tuned on a snapshot, and from which adapter it continues."""

    skip: str | None
    """Why the fine-tuning is skipped; None when it runs."""
    current_adapter_dir: str | None
    """The recorded adapter (current.json) the new one warm-starts from."""
    new_records: int
    """Interactions since the recorded adapter's snapshot."""


def resolve_teacher(teacher: str, use_adapter: bool) -> TeacherChoice:
    """The teacher preset and, when wanted and present, its bi-weekly fine-tuned LoRA."""
    # A remote teacher is fine-tuned (if at all) where it is served, never by our LoRA.
    recorded = read_pointer(teacher) if use_adapter and not remote_teacher(teacher) else None
    adapter = recorded["adapter_dir"] if recorded else None
    label = f"{teacher}+lora@snapshot-{recorded['snapshot_id']}" if recorded else teacher
    return TeacherChoice(preset=teacher, adapter_dir=adapter, label=label)


def teacher_plan(teacher: str, snapshot_id: int, min_new_records: int) -> TeacherPlan:
    """Whether to fine-tune `teacher` on this snapshot, and from which adapter to continue."""
    recorded = read_pointer(teacher)
    with get_database().transaction() as session:
        snapshot = session.get(DatasetSnapshot, snapshot_id)
        if snapshot is None:
            raise ValueError(f"unknown snapshot id {snapshot_id}")
        since = int(recorded["watermark"]) if recorded else 0
        new = session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.seq > since, Interaction.seq <= snapshot.watermark)
        )
    new_records = int(new or 0)
    skip = None
    if remote_teacher(teacher) is not None:
        skip = f"{teacher} is a remote teacher: it is fine-tuned where it is served"
    elif recorded and recorded["snapshot_id"] == snapshot_id:
        skip = f"already fine-tuned on snapshot {snapshot_id}"
    elif (
        (last := last_decision(teacher))
        and not last.get("adopted", True)
        and (last["snapshot_id"] == snapshot_id)
    ):
        gate = "; ".join(last.get("gate") or [])[:300]
        skip = f"the adapter trained on snapshot {snapshot_id} was rejected: {gate}"
    elif new_records < min_new_records:
        skip = f"too little new data: {new_records} new interactions (minimum {min_new_records})"
    return TeacherPlan(
        skip=skip,
        current_adapter_dir=recorded["adapter_dir"] if recorded else None,
        new_records=new_records,
    )


def finetune_teacher(
    teacher: str,
    snapshot: SnapshotSummary,
    current_adapter_dir: str | None,
    settings: DistillConfig,
) -> DistillResult:
    """Compute step: plain SFT of a LoRA on the teacher (the distill code with alpha=1)."""
    from tasks.distill import distill

    # alpha=1: the loss is cross-entropy on the feedback targets only, i.e. plain SFT; the
    # teacher is its own student, so its vocabulary matches and "auto" means logit anyway.
    config = replace(
        settings,
        strategy="logit" if settings.strategy == "auto" else settings.strategy,
        alpha=1.0,
        warm_start_adapter=Path(current_adapter_dir) if current_adapter_dir else None,
    )
    snapshot_id = snapshot.snapshot_id
    if snapshot_id is None:
        raise ValueError("no snapshot to fine-tune on")
    return distill(
        Path(str(snapshot.path)),
        teacher=teacher,
        student=teacher,
        output_dir=layout().training_run("teachers", teacher, snapshot_id),
        config=config,
        db=get_database(),
        snapshot_id=snapshot_id,
    )


def _record(
    teacher: str, trained: DistillResult, snapshot: SnapshotSummary, adopted: bool, gate: list[str]
) -> dict[str, Any]:
    return {
        "teacher": teacher,
        "adapter_dir": layout().stored(trained.adapter_dir),
        "run_id": trained.run_id,
        "snapshot_id": snapshot.snapshot_id,
        "watermark": snapshot.watermark,
        "created_at": datetime.now(UTC).isoformat(),
        "adopted": adopted,
        "gate": gate,  # the gate's reasons, beside the pointer
    }


def _append_history(pointer: Path, record: dict[str, Any]) -> None:
    history = artifact_store().refresh(pointer.parent / "history.jsonl")
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    artifact_store().push(history)


def last_decision(teacher: str) -> dict[str, Any] | None:
    """The newest adopted-or-rejected record of `teacher`'s adapters (history.jsonl)."""
    history = artifact_store().refresh(teacher_pointer(teacher).parent / "history.jsonl")
    if not history.is_file():
        return None
    lines = [line for line in history.read_text().splitlines() if line.strip()]
    return dict(json.loads(lines[-1])) if lines else None


def record_teacher_rejection(
    teacher: str, trained: DistillResult, snapshot: SnapshotSummary, reasons: list[str]
) -> None:
    """Note a new adapter the gate rejected: the pointer stays on the adapter in use."""
    _append_history(teacher_pointer(teacher), _record(teacher, trained, snapshot, False, reasons))


def record_teacher_adapter(
    teacher: str,
    trained: DistillResult,
    snapshot: SnapshotSummary,
    reasons: list[str] | None = None,
) -> str:
    """Point `current.json` at the new adapter atomically (write, fsync, rename)."""
    pointer = teacher_pointer(teacher)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    record = _record(teacher, trained, snapshot, True, list(reasons or []))
    staging = pointer.with_suffix(".tmp")
    with staging.open("w") as handle:
        json.dump(record, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, pointer)
    artifact_store().push(pointer)
    _append_history(pointer, record)
    return str(pointer)
