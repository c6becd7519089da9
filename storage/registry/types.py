"""What goes into a publish and what comes out of the registry: plain frozen values, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# Student names become directory and Hub repo names: keep them to a portable alphabet.
STUDENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# Written by the registry itself next to the published files.
RESERVED_NAMES = frozenset({"manifest.json", "README.md"})
# What a published file is to a phone: the merged model (default), the LoRA adapter of this
# version, or the base model the adapter applies to (published once per base revision).
ROLES = ("merged", "adapter", "base")


class RegistryError(ValueError):
    """A publish, promotion or rollback that cannot be done, with the reason."""


class ChecksumMismatchError(RegistryError):
    """A file's sha256 or size differs from what the exporter declared."""


class NotPublishedError(RegistryError):
    """A channel may only point at a version whose status is 'published'."""


class UnknownVersionError(RegistryError):
    """No such version of that student."""


def check_student(student: str) -> str:
    """`student` if it is a valid name, else a RegistryError naming the rule."""
    if not STUDENT_PATTERN.fullmatch(student or ""):
        raise RegistryError(
            f"invalid student name {student!r}: use letters, digits, '.', '_' or '-' "
            "(at most 96, starting with a letter or digit)"
        )
    return student


@dataclass(frozen=True)
class FileSpec:
    """One exported file to publish; `sha256`/`size`, when given, are checked before anything."""

    path: Path
    quantization: str | None = None
    format: str | None = None
    sha256: str | None = None
    size: int | None = None
    name: str | None = None
    role: str | None = None  # one of ROLES; None means "merged"
    # JSON-ready facts phones and operators need (adapter scale, LoRA rank/alpha, base sha256).
    meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.role is not None and self.role not in ROLES:
            raise RegistryError(f"unknown file role {self.role!r}; choose one of {list(ROLES)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileSpec:
        """Build from the dict an export task returns (`path` required)."""
        if "path" not in data:
            raise RegistryError(f"exported file entry has no 'path': {data!r}")
        known = {"path", "quantization", "format", "sha256", "size", "name", "role", "meta"}
        return cls(**{k: v for k, v in data.items() if k in known} | {"path": Path(data["path"])})

    @property
    def file_name(self) -> str:
        """The name the file is published under."""
        return self.name or Path(self.path).name

    @property
    def file_format(self) -> str:
        """The declared format, else the file suffix (gguf, safetensors, ...)."""
        return self.format or Path(self.file_name).suffix.lstrip(".").lower() or "bin"


@dataclass(frozen=True)
class VersionSpec:
    """Metadata of a version: base model, lineage, metrics, gate, minimum app version."""

    student: str
    base_model: str
    base_revision: str | None = None
    teacher: str | None = None
    strategy: str | None = None
    snapshot_id: int | None = None
    snapshot_fingerprint: str | None = None
    training_run_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    min_app_version: str | None = None
    license: str | None = None
    agent: str | None = None  # this version is that agent's adapter over the shared base
    # What operators size devices by: memory to run per quantization, variants, PEFT config.
    runtime: dict[str, Any] = field(default_factory=dict)

    def lineage(self) -> dict[str, Any]:
        """Where this version comes from, as written to manifest.json and the model card."""
        return {
            "base_model": self.base_model,
            "base_revision": self.base_revision,
            "teacher": self.teacher,
            "strategy": self.strategy,
            "snapshot_id": self.snapshot_id,
            "snapshot_fingerprint": self.snapshot_fingerprint,
            "training_run_id": self.training_run_id,
        } | ({"agent": self.agent} if self.agent else {})


@dataclass(frozen=True)
class Published:
    """The outcome of a publish; `reused` when an earlier run had already published it."""

    id: int
    student: str
    version: int
    status: str
    files: list[dict[str, Any]]
    manifest_path: str | None
    hub_revision: str | None
    reused: bool


@dataclass(frozen=True)
class ChannelMove:
    """The outcome of a promotion or rollback; `moved` is False when it already pointed there."""

    student: str
    channel: str
    action: str
    from_version: int | None
    to_version: int
    moved: bool
    reason: str
    actor: str


@dataclass(frozen=True)
class HistoryEntry:
    """One audit row with version numbers instead of row ids."""

    at: datetime
    channel: str
    action: str
    from_version: int | None
    to_version: int
    reason: str
    actor: str


@dataclass(frozen=True)
class VersionInfo:
    """A version as listed by `distillery models list`."""

    student: str
    version: int
    status: str
    channels: tuple[str, ...]
    base_model: str
    teacher: str | None
    strategy: str | None
    files: int
    size: int
    created_at: datetime
    published_at: datetime | None
    agent: str | None = None
    # Per role: {"merged": bytes, "adapter": bytes, "base": bytes} of this version's files.
    role_sizes: dict[str, int] = field(default_factory=dict)
    run_metadata: dict[str, Any] = field(default_factory=dict)  # memory, variants, PEFT config
