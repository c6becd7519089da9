"""The SQL data model: devices, their feedback, dataset snapshots, runs, versions, channels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Interaction.correction_source of a correction an enrolled reviewer wrote.
REVIEW_SOURCE = "review"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that must be timezone-aware going in and always reads back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware timestamps only")
        if value.tzinfo is not UTC:  # most values arrive in UTC already (serving.schemas)
            value = value.astimezone(UTC)
        # SQLite has no zone support; keep naive UTC there so values sort as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, one step to the stored text; elsewhere the composed default.

        SQLAlchemy's SQLite DATETIME formats through a %-dict per value; with our conversion
        in front that was ~8 % of an upload's CPU (bench/ingest.py). isoformat gives the same
        text (tests/storage/test_db.py compares the two).
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        naive_utc = self.process_bind_param

        def to_text(value: datetime | None) -> str | None:
            stored = naive_utc(value, dialect)
            return None if stored is None else stored.isoformat(" ", "microseconds")

        return to_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StorePath(TypeDecorator[str]):
    """A file of the artifact store: stored relative to the artifact root, read back local.

    The database never holds this host's path for a file inside the store, so a worker whose
    store is mounted elsewhere (another DISTILLERY_ARTIFACT_ROOT) reads the same rows. A path
    outside the store (a hand-run export, a test folder) is kept absolute.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        from storage.layout import layout  # the layout reads the settings; models stay plain

        return None if value is None else layout().stored(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        from storage.layout import layout

        return None if value is None else str(layout().resolve(value))


class Base(DeclarativeBase):
    """Declarative base with JSON for dict columns and aware UTC timestamps."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class Device(Base):
    """A phone install; it authenticates with a bearer token of which only a hash is kept."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32))
    app_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    # active: may upload; pending: awaits admin approval; revoked: its token is refused.
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    status_changed_at: Mapped[datetime | None]
    # user: uploads and chats; reviewer: also reads the review queue (other users' uncertain
    # and low-rated answers) and corrects them. Only an operator grants it (`distillery
    # devices grant reviewer ID`); authentication reads it with the status, every request.
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")


class EnrollmentNonce(Base):
    """A signed registration's nonce, remembered for the signature window: a replay is refused."""

    __tablename__ = "enrollment_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class FeedbackBatch(Base):
    """One accepted upload; its id is returned to the phone."""

    __tablename__ = "feedback_batches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    client_timestamp: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Interactions whose user consented to no use: counted here, their text never stored.
    not_stored: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # The daily quota sums a device's batches of today.
    __table_args__ = (Index("ix_feedback_batches_device_received", "device_id", "received_at"),)


class Interaction(Base):
    """A prompt the phone's model answered, with the user's rating and correction.

    `seq` orders rows by arrival and is what snapshot watermarks refer to; `id` is the
    client-generated idempotency key. The pipeline never updates or deletes these rows; a
    device that re-sends an id with a later `client_updated_at` replaces rating and
    correction (earlier values go to InteractionRevision) and the row takes a new seq, so
    the next snapshot picks the updated record up as new.
    """

    __tablename__ = "interactions"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("feedback_batches.id"))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text)
    correction: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None]
    latency_ms: Mapped[int | None]
    category: Mapped[str | None] = mapped_column(String(128))
    # The on-phone agent (assistant persona / task) that answered; each may get its own adapter.
    agent: Mapped[str | None] = mapped_column(String(64))
    client_created_at: Mapped[datetime]
    client_updated_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where the answer was given: a phone's on-device model, or the web chat on the service.
    source: Mapped[str] = mapped_column(String(16), default="phone", server_default="phone")
    # Per-answer token uncertainty (web chat): mean entropy, share of tokens with p < 0.3,
    # alerts; None where the client measured nothing.
    uncertainty: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the user allowed: "train" (any use) or "evaluate" (held-out checks only). Rows
    # whose user allowed neither are never stored; their batch counts them.
    consent: Mapped[str] = mapped_column(String(16), default="train", server_default="train")
    # Who wrote `correction`: None, the user of the device that uploaded the row; "review",
    # an enrolled reviewer, whose device is `reviewed_by` (storage/repo/review.py).
    correction_source: Mapped[str | None] = mapped_column(String(16))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_interactions_received_at", "received_at"),)


class InteractionRevision(Base):
    """Audit trail of feedback updates: the values an interaction had before each update.

    `device_id` made the update: the row's own device, or a reviewer's (a review correction,
    whose batch `replaced_by_batch` is then the reviewer's).
    """

    __tablename__ = "interaction_revisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    interaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    previous_seq: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[int | None]
    correction: Mapped[str | None] = mapped_column(Text)
    correction_source: Mapped[str | None] = mapped_column(String(16))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    client_updated_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
    replaced_by_batch: Mapped[uuid.UUID] = mapped_column(Uuid)


class DatasetSnapshot(Base):
    """An immutable, reproducible dataset built from interactions up to a watermark."""

    __tablename__ = "dataset_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshots.id"))
    watermark: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_version: Mapped[str] = mapped_column(String(64))
    split_sizes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    filter_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path: Mapped[str] = mapped_column(StorePath)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Erasures that removed rows from this snapshot's files: [{erasure, records, at}, ...].
    redactions: Mapped[list[Any] | None] = mapped_column(JSON)


class TrainingRun(Base):
    """One distillation of a student from a teacher on a snapshot."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(String(128), index=True)
    teacher: Mapped[str] = mapped_column(String(128))
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshots.id"))
    strategy: Mapped[str] = mapped_column(String(32))
    strategy_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_dir: Mapped[str | None] = mapped_column(StorePath)
    # The adapter the gate judged (the preference stage's when it ran), recorded when training
    # ends (as every store path: relative to the artifact root, see StorePath).
    adapter_path: Mapped[str | None] = mapped_column(StorePath)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ModelVersion(Base):
    """A trained student version: lineage, metrics, gate decision and file manifest."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(String(256))
    base_revision: Mapped[str | None] = mapped_column(String(64))
    teacher: Mapped[str | None] = mapped_column(String(256))
    strategy: Mapped[str | None] = mapped_column(String(32))
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshots.id"))
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{"name", "path", "size", "sha256", "quantization", "url"?}]: `path` is relative to the
    # artifact root (served at /api/artifacts/<path>); a Hub-hosted file carries its own `url`.
    files: Mapped[list[Any]] = mapped_column(default=list)
    min_app_version: Mapped[str | None] = mapped_column(String(32))
    # Set when this version is one agent's adapter over the student's shared base (else None).
    agent: Mapped[str | None] = mapped_column(String(64))
    # {"memory": {quant: bytes}, "variants": [...], "peft": {...}}: what operators size by.
    runtime: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    hub_revision: Mapped[str | None] = mapped_column(String(64))
    # pending -> published (visible) | rejected | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]

    snapshot: Mapped[DatasetSnapshot | None] = relationship()

    __table_args__ = (UniqueConstraint("student", "version", name="uq_model_versions_student"),)


class Evaluation(Base):
    """Metrics of one model version on one evaluation set."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    student: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[str] = mapped_column(String(64))  # candidate / stable / base
    eval_set: Mapped[str] = mapped_column(String(128))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(Base):
    """A named pointer (stable, candidate) from a student to one of its versions."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(32))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()

    __table_args__ = (UniqueConstraint("student", "name", name="uq_channels_student_name"),)


class Rollout(Base):
    """A staged rollout: a version served to `percent` % of a student's devices (a cohort
    chosen by a stable hash of student, device and rollout id), the rest staying on stable."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(String(128), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    percent: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active/promoted/aborted
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()


class ChannelEvent(Base):
    """Audit trail: every promotion and rollback of a channel pointer."""

    __tablename__ = "channel_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # promote / rollback
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="pipeline")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Erasure(Base):
    """A request to erase interactions (one device's, or all received before a date) and
    how far it got: rows go at once, snapshot files and teacher cache entries after."""

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid hex, shown to users
    scope: Mapped[str] = mapped_column(String(16))  # device / before
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    before: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(64))  # device:<id>, an operator, retention
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / done
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Versions trained on, or possibly replaying, erased rows: [{student, agent, version, how}].
    versions: Mapped[list[Any]] = mapped_column(default=list)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ErasedRecord(Base):
    """The tombstone of one erased interaction: its id, so files and caches can drop it and
    a phone re-sending it is not stored again. Holds no content."""

    __tablename__ = "erased_records"

    record_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    erasure_id: Mapped[str] = mapped_column(ForeignKey("erasures.id"), index=True)


class DataAuditEvent(Base):
    """One thing done to users' data: an erasure, a retention pass, a consent exclusion."""

    __tablename__ = "data_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(32))  # erase / retention / consent
    actor: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")  # what it applied to
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
