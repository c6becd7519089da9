"""Per-student bookkeeping of a perpetual cycle: what to skip, where to warm-start, the slot."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL
from sqlalchemy import func, select

from storage.artifact_store import ArtifactMissingError, artifact_store
from storage.config import StorageSettings
from storage.db import get_database
from storage.layout import layout
from storage.models import Channel, DatasetSnapshot, Interaction, ModelVersion, TrainingRun
from storage.repo.erasure import tainted_versions
from tasks.config import CycleConfig
from tasks.distill.config import DistillResult
from tasks.models.presets import get_preset
from tasks.prepare.summary import SnapshotSummary
from tasks.publish import VersionLineage
from tasks.results import StageResult
from tasks.teacher import TeacherChoice

if TYPE_CHECKING:  # the export package pulls in torch: only its type is needed here
    from tasks.export.report import ExportReport

STABLE = "stable"


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
    path = layout().lock(training_limit_name(model))
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
    cold_start: str | None = None
    """Why the candidate trains from the base instead of warm-starting from stable."""


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
            stable_adapter = run_adapter(run) if run else None
        cold_start = None
        if (
            stable is not None
            and StorageSettings.read().erasure_retrain
            and stable.version in tainted_versions(session=session, student=student)
        ):
            cold_start = (
                f"v{stable.version} was trained on erased rows (DISTILLERY_ERASURE_RETRAIN): "
                "training from the base"
            )
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
        cold_start=cold_start,
    )


def record_gate_decision(run_id: int | None, decision: str) -> None:
    """Note the gate's decision on the training run, so a rerun does not train it again."""
    if run_id is None:
        return
    with get_database().transaction(write=True) as session:
        run = session.get(TrainingRun, run_id)
        if run is not None:
            run.metrics = {**(run.metrics or {}), "gate_decision": decision}


class MissingAdapterError(FileNotFoundError):
    """A run's recorded adapter is not where the store says: never a silent cold start."""


def run_adapter(run: TrainingRun) -> str | None:
    """The adapter the gate judged in `run`, as a local path: the one reader of it.

    Runs record it when training ends (`adapter_path`, relative to the artifact root). Runs
    recorded before that have only their folder: it is read with the rule they were written
    under (the preference stage's adapter when it ran, else the KD one). An adapter that
    cannot be found raises MissingAdapterError naming where it was looked for, so a cycle
    never silently cold-starts or gates against the base instead of the stable version.
    """
    if run.adapter_path:
        # Loaded rows hold a local path already (storage.models.StorePath); a run built in
        # memory may still hold the stored key: both resolve under this host's root.
        path = layout().resolve(run.adapter_path)
        store = artifact_store()
        try:
            store.fetch(path)  # from the shared store when another host trained it
        except ArtifactMissingError:
            pass
        if not (path / "adapter_config.json").is_file():
            raise MissingAdapterError(
                f"training run {run.id}'s adapter is missing: {store.uri(path)}: restore the "
                "artifact store, or roll the channel back"
            )
        return str(path)
    if not run.output_dir:
        return None
    root = Path(run.output_dir)
    for candidate in (root / "preference" / "adapter", root / "adapter", root):
        if (candidate / "adapter_config.json").is_file():
            return str(candidate)
    raise MissingAdapterError(
        f"training run {run.id}'s adapter is missing under {root}: restore the artifact "
        "store, or roll the channel back"
    )


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
        config.export.quantizations,
        parity_texts(texts_from),
        name=student,
        adapter_gguf=deltas,
        base_revision=get_preset(student).revision,
        base_cache=layout().base_ggufs(student),
    )
    if not report.files:
        raise RuntimeError(f"export of {student} kept no file within tolerance: {report.parity}")
    return report


def version_metadata(
    student: str,
    teacher: TeacherChoice,
    trained: DistillResult,
    snapshot: SnapshotSummary,
    agent: str | None = None,
) -> VersionLineage:
    """Lineage of a new version: base model and revision, teacher, strategy, snapshot, run."""
    preset = get_preset(student)
    return VersionLineage(
        base_model=preset.hub_id,
        base_revision=preset.revision,
        teacher=teacher.label,
        strategy=trained.strategy,
        snapshot_id=snapshot.snapshot_id,
        snapshot_fingerprint=snapshot.fingerprint,
        training_run_id=trained.run_id,
        agent=agent,
    )
