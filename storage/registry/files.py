"""File checks for publishing: sha256 and size, verified copies, fsync, the version manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from storage.registry.types import (
    FILE_NAME_PATTERN,
    RESERVED_NAMES,
    ChecksumMismatchError,
    FileSpec,
    RegistryError,
    VersionSpec,
)

CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 hex digest and size in bytes of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_files(files: list[FileSpec]) -> list[dict[str, Any]]:
    """Hash every file and compare with what was declared; the planned manifest entries.

    Refuses missing files, clashing or reserved names and any sha256/size mismatch, before
    anything is written anywhere.
    """
    if not files:
        raise RegistryError("nothing to publish: the list of exported files is empty")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in files:
        name = spec.file_name
        if not FILE_NAME_PATTERN.fullmatch(name) or name in RESERVED_NAMES:
            raise RegistryError(f"invalid published file name {name!r} (from {spec.path})")
        if name in seen:
            raise RegistryError(f"two exported files would both be published as {name!r}")
        seen.add(name)
        if not Path(spec.path).is_file():
            raise RegistryError(f"exported file {spec.path} does not exist")
        sha256, size = sha256_file(Path(spec.path))
        if spec.sha256 is not None and spec.sha256.lower() != sha256:
            raise ChecksumMismatchError(
                f"sha256 mismatch for {name}: declared {spec.sha256}, file has {sha256}"
            )
        if spec.size is not None and spec.size != size:
            raise ChecksumMismatchError(
                f"size mismatch for {name}: declared {spec.size} bytes, file has {size}"
            )
        entry: dict[str, Any] = {
            "name": name,
            "size": size,
            "sha256": sha256,
            "quantization": spec.quantization,
            "format": spec.file_format,
        }
        # Only when set: a merged-only version keeps exactly the manifest it always had.
        if spec.role is not None:
            entry["role"] = spec.role
        if spec.meta:
            entry["meta"] = dict(spec.meta)
        entries.append(entry)
    return entries


def role_of(entry: dict[str, Any]) -> str:
    """A manifest entry's role: 'merged' unless it says 'adapter' or 'base'."""
    return str(entry.get("role") or "merged")


def role_sizes(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Bytes per role among a version's file entries."""
    out: dict[str, int] = {}
    for entry in entries:
        out[role_of(entry)] = out.get(role_of(entry), 0) + int(entry.get("size") or 0)
    return out


def copy_verified(src: Path, dst: Path, *, sha256: str, size: int) -> None:
    """Copy `src` to `dst`, hashing the bytes as written, fsync; refuse if they differ."""
    digest = hashlib.sha256()
    written = 0
    with open(src, "rb") as source, open(dst, "xb") as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            written += len(chunk)
        target.flush()
        os.fsync(target.fileno())
    # The source may have changed since it was checked (an exporter still writing it).
    if digest.hexdigest() != sha256 or written != size:
        raise ChecksumMismatchError(
            f"{src} changed while publishing: copied sha256 {digest.hexdigest()} "
            f"({written} bytes), expected {sha256} ({size} bytes)"
        )


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to a new file at `path` and fsync it."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_manifest(spec: VersionSpec, version: int, entries: list[dict[str, Any]]) -> bytes:
    """manifest.json of a version: deterministic bytes, so a rerun writes the same file."""
    manifest = {
        "student": spec.student,
        "version": version,
        "base_model": spec.base_model,
        "base_revision": spec.base_revision,
        "min_app_version": spec.min_app_version,
        "files": [
            {
                k: e[k]
                for k in ("name", "size", "sha256", "quantization", "format", "role", "meta")
                if k in e
            }
            for e in entries
        ],
        "lineage": spec.lineage(),
        "metrics": spec.metrics,
        "gate": spec.gate,
    }
    if spec.agent is not None:
        manifest["agent"] = spec.agent
    if spec.runtime:
        manifest["runtime"] = spec.runtime
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
