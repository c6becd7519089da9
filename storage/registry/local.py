"""The local registry: files under the artifact root at models/<student>/<version>/<file>.

The service serves them at /api/artifacts/<path>, `path` being relative to the artifact root.
Files are copied into a staging directory next to the target, checked (sha256 and size),
fsynced, and the directory is renamed into place in one step.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from storage.registry.base import Registry
from storage.registry.files import copy_verified, fsync_dir, role_of, sha256_file, write_synced
from storage.registry.types import FileSpec, VersionSpec

STAGING_PREFIX = ".staging-"


class LocalRegistry(Registry):
    """Registry whose files live under the artifact root, served by our own service."""

    backend = "local"

    def version_dir(self, student: str, version: int) -> str:
        """The directory of a version, relative to the artifact root."""
        return f"models/{student}/{version}"

    def base_dir(self, student: str, sha256: str) -> str:
        """Where a base file lives, shared by every version built on it (content-addressed)."""
        return f"models/{student}/base/{sha256[:16]}"

    def manifest_location(self, student: str, version: int) -> str | None:
        """manifest.json of a version, relative to the artifact root."""
        return f"{self.version_dir(student, version)}/manifest.json"

    def _place(
        self,
        spec: VersionSpec,
        version: int,
        files: list[FileSpec],
        planned: list[dict[str, Any]],
        manifest: bytes,
        card: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        rel = self.version_dir(spec.student, version)
        final = self.artifact_root / rel
        parent = final.parent
        parent.mkdir(parents=True, exist_ok=True)
        # The base is published once per base revision: placed beside the versions, not in one.
        bases = {
            e["name"]: self._place_base(spec.student, f, e)
            for f, e in zip(files, planned, strict=True)
            if role_of(e) == "base"
        }
        own = [(f, e) for f, e in zip(files, planned, strict=True) if role_of(e) != "base"]
        # Staging dirs of this version are leftovers of a crashed attempt: never advertised.
        self._clean_staging(parent, version)
        if not (final.is_dir() and _holds(final, [e for _, e in own], manifest)):
            staging = parent / f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:12]}"
            staging.mkdir()
            for spec_file, entry in own:
                copy_verified(
                    Path(spec_file.path),
                    staging / entry["name"],
                    sha256=entry["sha256"],
                    size=entry["size"],
                )
            write_synced(staging / "manifest.json", manifest)
            if card is not None:
                write_synced(staging / "README.md", card.encode())
            fsync_dir(staging)
            if final.exists():
                # A partial or different directory from an attempt whose row stayed pending.
                shutil.rmtree(final)
            rename_into_place(staging, final)
            fsync_dir(parent)
        entries = [
            {**entry, "path": bases.get(entry["name"]) or f"{rel}/{entry['name']}"}
            for entry in planned
        ]
        return entries, None

    def _place_base(self, student: str, spec_file: FileSpec, entry: dict[str, Any]) -> str:
        """Copy a base file to its shared directory unless an identical one is there; its path."""
        rel = f"{self.base_dir(student, entry['sha256'])}/{entry['name']}"
        target = self.artifact_root / rel
        if target.is_file() and target.stat().st_size == entry["size"]:
            if sha256_file(target)[0] == entry["sha256"]:
                return rel  # an earlier version (or attempt) published this base already
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}-{entry['name']}")
        try:
            copy_verified(Path(spec_file.path), tmp, sha256=entry["sha256"], size=entry["size"])
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(target.parent)
        return rel

    def cleanup_staging(self, older_than_s: float = 3600.0) -> list[Path]:
        """Remove leftover staging directories under models/; the removed paths.

        Only those untouched for `older_than_s`, so a publish running right now keeps its own.
        """
        removed: list[Path] = []
        cutoff = time.time() - older_than_s
        for staging in sorted((self.artifact_root / "models").glob(f"*/{STAGING_PREFIX}*")):
            if staging.stat().st_mtime <= cutoff:
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging)
        return removed

    def _clean_staging(self, parent: Path, version: int) -> None:
        for staging in parent.glob(f"{STAGING_PREFIX}{version}-*"):
            shutil.rmtree(staging, ignore_errors=True)


def rename_into_place(staging: Path, final: Path) -> None:
    """The atomic step: the whole version directory appears at once."""
    os.replace(staging, final)


def _holds(directory: Path, planned: list[dict[str, Any]], manifest: bytes) -> bool:
    """Whether `directory` already holds exactly these files (a rerun after the rename)."""
    try:
        if (directory / "manifest.json").read_bytes() != manifest:
            return False
        for entry in planned:
            path = directory / entry["name"]
            if not path.is_file() or path.stat().st_size != entry["size"]:
                return False
            if sha256_file(path)[0] != entry["sha256"]:
                return False
    except OSError:
        return False
    return True
