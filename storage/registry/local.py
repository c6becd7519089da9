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
from storage.registry.files import copy_verified, fsync_dir, sha256_file, write_synced
from storage.registry.types import FileSpec, VersionSpec

STAGING_PREFIX = ".staging-"


class LocalRegistry(Registry):
    """Registry whose files live under the artifact root, served by our own service."""

    backend = "local"

    def version_dir(self, student: str, version: int) -> str:
        """The directory of a version, relative to the artifact root."""
        return f"models/{student}/{version}"

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
        # Staging dirs of this version are leftovers of a crashed attempt: never advertised.
        self._clean_staging(parent, version)
        if not (final.is_dir() and _holds(final, planned, manifest)):
            staging = parent / f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:12]}"
            staging.mkdir()
            for spec_file, entry in zip(files, planned, strict=True):
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
        entries = [{**entry, "path": f"{rel}/{entry['name']}"} for entry in planned]
        return entries, None

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
