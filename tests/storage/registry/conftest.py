"""Fixtures for registry tests: exported files on disk and a local registry on each database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.db import Database
from storage.registry import FileSpec, LocalRegistry, VersionSpec


def make_export(directory: Path, name: str = "student-q8_0.gguf", size: int = 4096) -> FileSpec:
    """A file standing in for an exported GGUF (the registry never parses it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"GGUF" + os.urandom(size - 4))
    return FileSpec(path=path, quantization=name.rsplit("-", 1)[-1].split(".")[0].upper())


def make_spec(student: str = "smol-student", **overrides: object) -> VersionSpec:
    """Version metadata as the pipeline passes it."""
    fields: dict[str, object] = {
        "student": student,
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "base_revision": "12fd25f77366fa6b3b4b768ec3050bf629380bac",
        "teacher": "Qwen/Qwen2.5-7B-Instruct",
        "strategy": "logit",
        "snapshot_fingerprint": "ab" * 32,
        "metrics": {"perplexity": 9.4, "bleu": 21.5},
        "gate": {"decision": "promote", "reasons": ["perplexity improved"]},
        "min_app_version": "1.4.0",
        "license": "apache-2.0",
    }
    fields.update(overrides)
    return VersionSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> LocalRegistry:
    """A local registry on the parametrized database with its own artifact root."""
    return LocalRegistry(db, tmp_path / "artifacts")


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """Where the 'exporter' wrote its files."""
    return tmp_path / "export"
