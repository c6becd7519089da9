"""A written GGUF file as the registry records it: path, quantization, size, sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GGUFFile:
    """One written GGUF file."""

    path: Path
    quantization: str
    size: int
    sha256: str
    notes: tuple[str, ...] = field(default=())


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: Path, quantization: str, notes: tuple[str, ...] = ()) -> GGUFFile:
    """Size and checksum of a written file."""
    return GGUFFile(path, quantization, path.stat().st_size, sha256_of(path), notes)
