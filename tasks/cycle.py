"""Per-student bookkeeping of a perpetual cycle: what to skip, where to warm-start, the slot."""

from __future__ import annotations

import fcntl
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from storage.config import StorageSettings
from storage.db import get_database
from storage.models import Channel, DatasetSnapshot, Interaction, ModelVersion, TrainingRun
from tasks.distill.config import DistillResult
from tasks.models.presets import get_preset
from tasks.models.remote import check_teacher_name
from tasks.prepare.summary import SnapshotSummary
from tasks.results import StageResult

if TYPE_CHECKING:  # export pulls in torch; teacher imports this module
    from tasks.export.pipeline import ExportReport
    from tasks.teacher import TeacherChoice

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
        description="GGUF files for phones; PHONE = the first of Q4_K_M, Q4_1, Q8_0 that passes "
        "llama.cpp parity",
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
        return check_teacher_name(name)  # a local preset or a remote one (tasks/models/remote.py)

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


class StudentPlan(StageResult):
    """Whether a student trains on a snapshot, and from which stable version it starts."""

    skip: str | None
    """Why the student is skipped on this snapshot; None when it trains."""
    existing_version: int | None
    """The version already built from this snapshot, if any."""
    stable_version: int | None
    """Version number on the student's stable channel; None before the first promotion."""
    stable_version_id: int | None
    """ModelVersion id of the stable version."""
    stable_adapter_dir: str | None
    """The stable version's adapter: the candidate warm-starts from it and is compared with it."""
    new_records: int
    """Interactions since the stable version's snapshot."""


def student_plan(student: str, snapshot_id: int, min_new_records: int) -> StudentPlan:
    """Whether `student` trains on `snapshot_id`, and if so from which stable adapter.

    A version already built from this snapshot (published, pending or rejected) means the
    cycle ran before: nothing is trained or published twice.
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
        stable_adapter = None
        if stable is not None and stable.training_run_id is not None:
            run = session.get(TrainingRun, stable.training_run_id)
            stable_adapter = _adapter_of(run.output_dir) if run and run.output_dir else None
    new = int(new_records or 0)
    skip = None
    if existing is not None:
        skip = (
            f"v{existing.version} ({existing.status}) was already built from snapshot {snapshot_id}"
        )
    elif rejected is not None:
        skip = f"the candidate of run {rejected} on snapshot {snapshot_id} was rejected"
    elif new < min_new_records:
        skip = (
            f"too little new data: {new} new interactions since "
            f"{'v' + str(stable.version) if stable else 'the start'} (minimum {min_new_records})"
        )
    return StudentPlan(
        skip=skip,
        existing_version=existing.version if existing else None,
        stable_version=stable.version if stable else None,
        stable_version_id=stable.id if stable else None,
        stable_adapter_dir=stable_adapter,
        new_records=new,
    )


def record_gate_decision(run_id: int | None, decision: str) -> None:
    """Note the gate's decision on the training run, so a rerun does not train it again."""
    if run_id is None:
        return
    with get_database().transaction(write=True) as session:
        run = session.get(TrainingRun, run_id)
        if run is not None:
            run.metrics = {**(run.metrics or {}), "gate_decision": decision}


def _adapter_of(output_dir: str) -> str | None:
    """The adapter the gate passed inside a training run's output, None when it is gone.

    With the preference stage on, that is its adapter (KD, then KTO/DPO), not the KD one.
    """
    root = Path(output_dir)
    for candidate in (root / "preference" / "adapter", root / "adapter", root):
        if (candidate / "adapter_config.json").is_file():
            return str(candidate)
    return None


def run_dir(kind: str, model: str, snapshot_id: int) -> Path:
    """Where a training on a snapshot writes: fixed, so a retried run resumes its checkpoint."""
    root = StorageSettings().resolved_artifact_root()
    return root / "runs" / kind / model / f"snapshot-{snapshot_id}"


def distill_student(
    student: str,
    teacher: TeacherChoice,
    snapshot: SnapshotSummary,
    stable_adapter_dir: str | None,
    config: CycleConfig,
) -> DistillResult:
    """Compute step (no retries): LoRA-distill `student` from the teacher on the snapshot."""
    from tasks.distill import distill
    from tasks.distill.config import DistillConfig

    overrides = {**config.distill, "warm_start_adapter": stable_adapter_dir}
    extra: dict[str, Any] = {}
    if teacher.adapter_dir:
        if "teacher_adapter_dir" not in inspect.signature(distill).parameters:
            raise RuntimeError(
                "distill() cannot load a teacher adapter; set use_teacher_adapter=false"
            )
        extra["teacher_adapter_dir"] = Path(teacher.adapter_dir)
    snapshot_id = _snapshot_id(snapshot)
    return distill(
        Path(str(snapshot.path)),
        teacher=teacher.preset,
        student=student,
        output_dir=run_dir("students", student, snapshot_id),
        config=DistillConfig.from_dict(overrides),
        db=get_database(),
        snapshot_id=snapshot_id,
        **extra,
    )


def _snapshot_id(snapshot: SnapshotSummary) -> int:
    """The id of a snapshot the cycle trains on (the flows skip when there is none)."""
    if snapshot.snapshot_id is None:
        raise ValueError("no snapshot to train on")
    return snapshot.snapshot_id


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


def export_student(
    student: str, trained: DistillResult, snapshot: SnapshotSummary, config: CycleConfig
) -> ExportReport:
    """Compute step: merge the adapter into the base and write the phones' GGUF files."""
    return export_trained(student, trained, str(snapshot.path), config, config.adapter_gguf)


def export_trained(
    student: str, trained: DistillResult, texts_from: str, config: CycleConfig, deltas: bool
) -> ExportReport:
    """Export a trained adapter for phones, checked on texts from the snapshot `texts_from`;
    `deltas` also writes the base and adapter GGUF files."""
    from tasks.export.pipeline import export_for_phones
    from tasks.models.load import materialize_preset

    report = export_for_phones(
        materialize_preset(student),
        Path(trained.adapter_dir),
        Path(trained.output_dir) / "export",
        config.quantizations,
        parity_texts(texts_from),
        name=student,
        adapter_gguf=deltas,
        base_revision=get_preset(student).revision,
        base_cache=StorageSettings().resolved_artifact_root() / "bases" / student,
    )
    if not report.files:
        raise RuntimeError(f"export of {student} kept no file within tolerance: {report.parity}")
    return report


def version_metadata(
    student: str, teacher: TeacherChoice, trained: DistillResult, snapshot: SnapshotSummary
) -> dict[str, Any]:
    """Lineage of a new version: base model and revision, teacher, strategy, snapshot, run."""
    preset = get_preset(student)
    return {
        "base_model": preset.hub_id,
        "base_revision": preset.revision,
        "teacher": teacher.label,
        "strategy": trained.strategy,
        "snapshot_id": snapshot.snapshot_id,
        "snapshot_fingerprint": snapshot.fingerprint,
        "training_run_id": trained.run_id,
    }
