"""Per-student bookkeeping of a perpetual cycle: what to skip, where to warm-start, the slot."""

from __future__ import annotations

import fcntl
import inspect
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, State
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from storage.config import StorageSettings
from storage.db import get_database
from storage.models import Channel, DatasetSnapshot, Interaction, ModelVersion, TrainingRun
from tasks.models.presets import get_preset

STABLE = "stable"


class CycleConfig(BaseModel):
    """What one cycle trains; every field is editable in the Prefect UI (a typed parameter)."""

    teacher: str = Field("smollm2-135m-instruct", description="teacher model preset")
    students: list[str] = Field(
        default_factory=lambda: ["smollm2-pruned-student"], description="student presets"
    )
    use_teacher_adapter: bool = Field(
        True, description="distill from the bi-weekly fine-tuned teacher LoRA when one exists"
    )
    min_new_records: int = Field(8, ge=0, description="skip a student with fewer new records")
    prepare: dict[str, Any] = Field(default_factory=dict, description="PrepareConfig overrides")
    settle_seconds: float | None = Field(
        None, ge=0, description="leave interactions younger than this for the next cycle"
    )
    distill: dict[str, Any] = Field(default_factory=dict, description="DistillConfig overrides")
    evaluate: dict[str, Any] = Field(
        default_factory=dict,
        description="evaluate_candidate_flow options: eval_options, gate_options, n_resamples",
    )
    quantizations: list[str] = Field(
        default_factory=lambda: ["PHONE"],
        description="GGUF files for phones; PHONE = Q4_K_M when it passes parity, else Q8_0",
    )
    adapter_gguf: bool = Field(
        True,
        description="also publish the LoRA adapter as a llama.cpp GGUF adapter and the base "
        "GGUF (once per base revision): phones holding the base download only the adapter",
    )
    agents: list[str] = Field(
        default_factory=list,
        description="also train one adapter per agent (interactions' `agent`), each on its "
        "own channel stable:<agent>",
    )
    agent_min_records: int = Field(
        16, ge=0, description="an agent with fewer training rows also trains on shared rows"
    )

    # Checked when the parameters are read, so a typo fails before any data is prepared.
    @field_validator("teacher")
    @classmethod
    def _known_teacher(cls, name: str) -> str:
        get_preset(name)
        return name

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,23}", name):
                raise ValueError(f"agent {name!r}: letters, digits, '.', '_', '-'; at most 24")
        return names

    @field_validator("students")
    @classmethod
    def _known_students(cls, names: list[str]) -> list[str]:
        for name in names:
            get_preset(name)
        return names


def training_limit_name(model: str) -> str:
    """The Prefect global concurrency limit that serialises training of `model`."""
    return f"training-{model}"


def ensure_training_limit(model: str, limit: int = 1) -> str:
    """Create the `training-<model>` limit (one slot) unless it exists; an operator edit stays."""
    name = training_limit_name(model)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except ObjectAlreadyExists:  # another run created it between our read and write
                pass
    return name


@contextmanager
def training_slot(model: str) -> Iterator[None]:
    """Hold the single training slot of `model`; a second training waits here until it is free.

    Across machines the slot is the Prefect global concurrency limit `training-<model>`, used
    when a Prefect server is configured (its lease expires if a holder dies). In-process runs
    with Prefect's ephemeral API (demo, CLI, notebook) keep no lease service, so a killed run
    would leak the slot there: they rely on the file lock, which the OS drops with the process.
    """
    with _file_lock(model):
        if PREFECT_API_URL.value():
            with concurrency(ensure_training_limit(model), occupy=1, strict=True):
                yield
        else:
            yield


@contextmanager
def _file_lock(model: str) -> Iterator[None]:
    """An exclusive lock file per model under the artifact root, held while training."""
    path = (
        StorageSettings().resolved_artifact_root() / "locks" / f"{training_limit_name(model)}.lock"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the other training ends
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stable_row(session: Any, student: str) -> ModelVersion | None:
    channel = session.scalar(
        select(Channel).where(Channel.student == student, Channel.name == STABLE)
    )
    return channel.model_version if channel else None


@task(retries=2, retry_delay_seconds=2, persist_result=True)
def student_plan(student: str, snapshot_id: int, min_new_records: int) -> dict[str, Any]:
    """Whether `student` trains on `snapshot_id`, and if so from which stable adapter.

    Returns {"skip": reason | None, "existing_version", "warm_adapter", "stable_version",
    "new_records"}. A version already built from this snapshot (published, pending or
    rejected) means the cycle ran before: nothing is trained or published twice.
    """
    with get_database().transaction() as session:
        snapshot = session.get(DatasetSnapshot, snapshot_id)
        if snapshot is None:
            raise ValueError(f"unknown snapshot id {snapshot_id}")
        existing = session.scalar(
            select(ModelVersion)
            .where(
                ModelVersion.student == student,
                ModelVersion.snapshot_id == snapshot_id,
                ModelVersion.status != "failed",
            )
            .order_by(ModelVersion.version.desc())
        )
        rejected = session.scalar(
            select(TrainingRun.id)
            .where(
                TrainingRun.student == student,
                TrainingRun.snapshot_id == snapshot_id,
                TrainingRun.status == "succeeded",
                TrainingRun.metrics["gate_decision"].as_string() == "reject",
            )
            .limit(1)
        )
        stable = _stable_row(session, student)
        since = 0
        if stable is not None and stable.snapshot is not None:
            since = stable.snapshot.watermark
        new_records = session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.seq > since, Interaction.seq <= snapshot.watermark)
        )
        warm = None
        if stable is not None and stable.training_run_id is not None:
            run = session.get(TrainingRun, stable.training_run_id)
            warm = _adapter_of(run.output_dir) if run and run.output_dir else None
    plan: dict[str, Any] = {
        "skip": None,
        "existing_version": existing.version if existing else None,
        "stable_version": stable.version if stable else None,
        "stable_version_id": stable.id if stable else None,
        "warm_adapter": warm,
        "new_records": int(new_records or 0),
    }
    if existing is not None:
        plan["skip"] = (
            f"v{existing.version} ({existing.status}) was already built from snapshot {snapshot_id}"
        )
    elif rejected is not None:
        plan["skip"] = f"the candidate of run {rejected} on snapshot {snapshot_id} was rejected"
    elif plan["new_records"] < min_new_records:
        plan["skip"] = (
            f"too little new data: {plan['new_records']} new interactions since "
            f"{'v' + str(stable.version) if stable else 'the start'} (minimum {min_new_records})"
        )
    return plan


@task(retries=2, retry_delay_seconds=2, persist_result=True)
def record_gate_decision(run_id: int | None, decision: str) -> None:
    """Note the gate's decision on the training run, so a rerun does not train it again."""
    if run_id is None:
        return
    with get_database().transaction(write=True) as session:
        run = session.get(TrainingRun, run_id)
        if run is not None:
            run.metrics = {**(run.metrics or {}), "gate_decision": decision}


def _adapter_of(output_dir: str) -> str | None:
    """The adapter folder inside a training run's output directory, None when it is gone."""
    root = Path(output_dir)
    for candidate in (root / "adapter", root):
        if (candidate / "adapter_config.json").is_file():
            return str(candidate)
    return None


class TimedRow:
    """A summary row for one student that knows how long its work took."""

    def __init__(self, student: str) -> None:
        self.student = student
        self.started = time.monotonic()

    def done(self, status: str, **fields: Any) -> dict[str, Any]:
        """The finished row: student, status, seconds and the given fields."""
        seconds = round(time.monotonic() - self.started, 1)
        return {"student": self.student, "status": status, "seconds": seconds, **fields}


def timed_row(student: str) -> TimedRow:
    """Start timing the row of `student`."""
    return TimedRow(student)


def cycle_state(summary: dict[str, Any]) -> State:
    """Completed when no student failed, else Failed ("PartiallyFailed" if some succeeded)."""
    rows = summary["students"]
    failed = [r["student"] for r in rows if r["status"] == "failed"]
    counts = ", ".join(
        f"{n} {s}"
        for s in ("published", "rejected", "skipped", "failed")
        if (n := sum(r["status"] == s for r in rows))
    )
    if not failed:
        return Completed(data=summary, message=counts or "no students configured")
    name = "Failed" if len(failed) == len(rows) else "PartiallyFailed"
    return Failed(name=name, data=summary, message=f"{counts}; failed: {', '.join(failed)}")


SUMMARY_COLUMNS = ("student", "status", "version", "decision", "detail", "teacher", "seconds")


def summary_markdown(snapshot: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The cycle's summary as a markdown table (the Prefect artifact and the CLI's printout)."""
    head = (
        f"### Perpetual cycle on snapshot {snapshot.get('snapshot_id')} "
        f"({snapshot.get('new_records', 0)} new records, splits {snapshot.get('split_sizes')})\n\n"
    )
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    for row in rows:
        cells = [str(row.get(c, "") if row.get(c) is not None else "") for c in SUMMARY_COLUMNS]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return head + "\n".join(lines) + "\n"


def run_dir(kind: str, model: str, snapshot_id: int) -> Path:
    """Where a training on a snapshot writes: fixed, so a retried run resumes its checkpoint."""
    root = StorageSettings().resolved_artifact_root()
    return root / "runs" / kind / model / f"snapshot-{snapshot_id}"


@task(name="distill-student", persist_result=True)
def distill_student(
    student: str,
    teacher: dict[str, Any],
    snapshot: dict[str, Any],
    warm_adapter: str | None,
    config: CycleConfig,
) -> dict[str, Any]:
    """Compute task (no retries): LoRA-distill `student` from the teacher on the snapshot."""
    from tasks.distill import distill
    from tasks.distill.config import DistillConfig

    overrides = {**config.distill, "warm_start_adapter": warm_adapter}
    extra: dict[str, Any] = {}
    if teacher["adapter_dir"]:
        if "teacher_adapter_dir" not in inspect.signature(distill).parameters:
            raise RuntimeError(
                "distill() cannot load a teacher adapter; set use_teacher_adapter=false"
            )
        extra["teacher_adapter_dir"] = Path(teacher["adapter_dir"])
    result = distill(
        Path(snapshot["path"]),
        teacher=teacher["preset"],
        student=student,
        output_dir=run_dir("students", student, snapshot["snapshot_id"]),
        config=DistillConfig.from_dict(overrides),
        db=get_database(),
        snapshot_id=snapshot["snapshot_id"],
        **extra,
    )
    return result.to_dict()


@task(retries=2, retry_delay_seconds=2, persist_result=True)
def earlier_test_splits(snapshot_id: int) -> list[str]:
    """Test splits of snapshots before this one (forgetting checks)."""
    from tasks.prepare.snapshot import previous_test_splits

    return [str(p) for p in previous_test_splits(get_database(), before_snapshot_id=snapshot_id)]


def parity_texts(snapshot_path: str, limit: int = 16) -> list[str]:
    """A few prompt + answer texts from the test split (else train) to check exported files."""
    from tasks.prepare.store import load_snapshot

    splits = load_snapshot(snapshot_path)
    rows = splits["test"] if len(splits.get("test", [])) else splits["train"]
    return [f"{r['prompt']}\n{r['target']}" for r in rows.select(range(min(limit, len(rows))))]


@task(name="export-student", persist_result=True)
def export_student(
    student: str, trained: dict[str, Any], snapshot: dict[str, Any], config: CycleConfig
) -> dict[str, Any]:
    """Compute task: merge the adapter into the base and write the phones' GGUF files."""
    from tasks.export.pipeline import export_for_phones
    from tasks.models.load import materialize_preset

    report = export_for_phones(
        materialize_preset(student),
        Path(trained["adapter_dir"]),
        Path(trained["output_dir"]) / "export",
        config.quantizations,
        parity_texts(snapshot["path"]),
        name=student,
        adapter_gguf=config.adapter_gguf,
        base_revision=get_preset(student).revision,
        base_cache=StorageSettings().resolved_artifact_root() / "bases" / student,
    )
    if not report.files:
        raise RuntimeError(f"export of {student} kept no file within tolerance: {report.parity}")
    return report.to_dict()


def version_metadata(
    student: str, teacher: dict[str, Any], trained: dict[str, Any], snapshot: dict[str, Any]
) -> dict[str, Any]:
    """Lineage of a new version: base model and revision, teacher, strategy, snapshot, run."""
    from tasks.models.presets import get_preset

    preset = get_preset(student)
    return {
        "base_model": preset.hub_id,
        "base_revision": preset.revision,
        "teacher": teacher["label"],
        "strategy": trained["strategy"],
        "snapshot_id": snapshot["snapshot_id"],
        "snapshot_fingerprint": snapshot["fingerprint"],
        "training_run_id": trained["run_id"],
    }
