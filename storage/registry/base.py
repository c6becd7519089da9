"""The registry interface: atomic publish (reserve, place files, one transaction), channels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from storage.artifact_store import ArtifactStore
from storage.db import Database
from storage.models import ModelVersion
from storage.registry import channels
from storage.registry.files import build_manifest, check_files, role_of
from storage.registry.types import (
    ChannelMove,
    FileSpec,
    HistoryEntry,
    Published,
    RegistryError,
    VersionInfo,
    VersionSpec,
    check_student,
)
from storage.repo import versions as version_repo


class Registry(ABC):
    """Publishes versions and moves channels; backends differ only in where files are placed.

    A publish runs in three steps, so that a crash anywhere advertises nothing:
    1. reserve: one transaction finds the version an earlier attempt started (same student,
       same file names and sha256) or inserts a 'pending' row numbered max+1;
    2. place: the backend puts files, manifest.json and the card where they are served,
       all-or-nothing, and idempotently for a rerun;
    3. publish: one transaction flips the row to 'published' with the final manifest.
    """

    backend = "abstract"

    def __init__(self, database: Database, artifact_root: Path) -> None:
        self.database = database
        self.artifact_root = Path(artifact_root)

    def publish(
        self,
        spec: VersionSpec,
        files: Sequence[FileSpec],
        *,
        card: str | Callable[[int, list[dict[str, Any]]], str] | None = None,
        version: int | None = None,
    ) -> Published:
        """Publish `files` as a new (or the given) version of `spec.student`; idempotent.

        `card` is the README.md text, or a function of (version, file entries) rendering it
        once the version number is known.
        """
        check_student(spec.student)
        planned = check_files(list(files))
        row, done = self._reserve(spec, planned, version)
        if done:
            return self._result(row, reused=True)
        manifest = build_manifest(spec, row.version, planned)
        text = card(row.version, planned) if callable(card) else card
        entries, hub_revision = self._place(spec, row.version, list(files), planned, manifest, text)
        self._share(spec.student, row.version, entries)

        def finish(session: Session) -> ModelVersion:
            current = version_repo.get_version_by_id(row.id, session=session)
            if current is None:
                raise RegistryError(
                    f"{spec.student} version {row.version} vanished while publishing"
                )
            return version_repo.mark_published(
                current, session=session, files=entries, hub_revision=hub_revision
            )

        return self._result(channels.in_write_transaction(self.database, finish), reused=False)

    def _share(self, student: str, version: int, entries: list[dict[str, Any]]) -> None:
        """Push the version's local files and manifest to the shared artifact store (when one
        is set), so a service on another host serves them; before the row says 'published'."""
        store = ArtifactStore.from_settings(local_root=self.artifact_root)
        if not store.shared:
            return
        local = [e for e in entries if e.get("path") and not e.get("url")]
        manifest = self.manifest_location(student, version)
        if manifest and "://" not in manifest:
            local.append({"path": manifest})
        for entry in local:
            if (self.artifact_root / entry["path"]).is_file():
                # A base is content-addressed and shared by versions: sent once per store.
                store.push(self.artifact_root / entry["path"], once=role_of(entry) == "base")

    @abstractmethod
    def _place(
        self,
        spec: VersionSpec,
        version: int,
        files: list[FileSpec],
        planned: list[dict[str, Any]],
        manifest: bytes,
        card: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Put the files where they are served; the final manifest entries and hub revision."""

    def manifest_location(self, student: str, version: int) -> str | None:
        """Where this backend keeps a version's manifest.json (path or URL)."""
        return None

    def promote(
        self,
        student: str,
        version: int,
        *,
        channel: str = "stable",
        reason: str = "",
        actor: str = "pipeline",
    ) -> ChannelMove:
        """Point `channel` of `student` at a published `version` (audit row included)."""
        return channels.promote(
            self.database, student, version, channel=channel, reason=reason, actor=actor
        )

    def rollback(
        self,
        student: str,
        *,
        to_version: int | None = None,
        channel: str = "stable",
        reason: str = "",
        actor: str = "cli",
    ) -> ChannelMove:
        """Move `channel` back to the previous version, or to `to_version` (must be published)."""
        return channels.rollback(
            self.database,
            student,
            to_version=to_version,
            channel=channel,
            reason=reason,
            actor=actor,
        )

    def history(self, student: str, *, channel: str | None = None) -> list[HistoryEntry]:
        """The audit trail of `student`, oldest first."""
        return channels.history(self.database, student, channel=channel)

    def versions(self, student: str | None = None) -> list[VersionInfo]:
        """Versions with their channels, newest first per student."""
        return channels.list_versions(self.database, student)

    def _reserve(
        self, spec: VersionSpec, planned: list[dict[str, Any]], version: int | None
    ) -> tuple[ModelVersion, bool]:
        """The pending row to publish into, and whether it is already published."""
        digests = [(e["name"], e["sha256"]) for e in planned]

        def work(session: Session) -> tuple[ModelVersion, bool]:
            if version is not None:
                row = version_repo.get_version(spec.student, version, session=session)
                if row is not None:
                    have = sorted((f.get("name"), f.get("sha256")) for f in row.files or [])
                    if have != sorted(digests):
                        raise RegistryError(
                            f"{spec.student} version {version} already exists with other files; "
                            "a version is immutable, publish a new one"
                        )
            else:
                row = version_repo.find_version_with_files(spec.student, digests, session=session)
            if row is not None:
                if row.status not in (version_repo.PENDING, version_repo.PUBLISHED):
                    raise RegistryError(
                        f"{spec.student} version {row.version} is {row.status!r}; "
                        "it cannot be published again"
                    )
                return row, row.status == version_repo.PUBLISHED
            number = version or version_repo.next_version_number(spec.student, session=session)
            row = version_repo.create_pending_version(
                session=session,
                student=spec.student,
                version=number,
                files=planned,
                base_model=spec.base_model,
                base_revision=spec.base_revision,
                teacher=spec.teacher,
                strategy=spec.strategy,
                snapshot_id=spec.snapshot_id,
                training_run_id=spec.training_run_id,
                metrics=spec.metrics,
                gate=spec.gate,
                min_app_version=spec.min_app_version,
                agent=spec.agent,
                runtime=spec.runtime or None,
            )
            return row, False

        return channels.in_write_transaction(self.database, work, attempts=5)

    def _result(self, row: ModelVersion, *, reused: bool) -> Published:
        return Published(
            id=row.id,
            student=row.student,
            version=row.version,
            status=row.status,
            files=list(row.files or []),
            manifest_path=self.manifest_location(row.student, row.version),
            hub_revision=row.hub_revision,
            reused=reused,
        )
