"""Artifact root: resolve client-supplied relative paths without ever leaving the root."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath


def resolve_artifact(root: Path, relative: str) -> Path | None:
    """The regular file at `root/relative`, or None if it is missing or would escape the root.

    Rejects absolute paths, `..`, backslashes and NUL, and resolves symlinks before checking
    containment, so a link pointing out of the root is refused as well.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    parts = PurePosixPath(relative).parts
    if relative.startswith("/") or any(part in ("..", ".") for part in parts):
        return None
    root = root.resolve()
    try:
        candidate = (root.joinpath(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
