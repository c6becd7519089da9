"""The delta files of a version: the base GGUF (once per base revision) and the GGUF adapter.

Written beside the merged file by export_for_phones(adapter_gguf=True); published only when
base + adapter in llama.cpp pass the adapter parity check, so a phone applying the adapter
runs what the merged file runs. A failure keeps the merged file and says why.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.registry.types import FileSpec
from tasks.export.adapter_gguf import (
    DEFAULT_ADAPTER_TYPE,
    AdapterConversionError,
    convert_lora_to_gguf,
)
from tasks.export.adapter_parity import AdapterParity, check_adapter_parity
from tasks.export.adapter_runtime import AdapterError
from tasks.export.convert import ConversionError, GGUFMetadata
from tasks.export.files import GGUFFile, describe
from tasks.export.gguf_export import write_gguf
from tasks.export.llama_cpp import LlamaCppUnavailable
from tasks.export.parity import Reference

log = logging.getLogger(__name__)


@dataclass
class DeltaExport:
    """Publishable base + adapter files (with role and meta), their parity, or why not."""

    files: list[FileSpec] = field(default_factory=list)
    parity: list[AdapterParity] = field(default_factory=list)
    skipped: str | None = None


def _entry(gguf_file: GGUFFile, role: str, meta: Mapping[str, Any]) -> FileSpec:
    return FileSpec(
        path=gguf_file.path,
        name=gguf_file.path.name,
        quantization=gguf_file.quantization,
        size=gguf_file.size,
        sha256=gguf_file.sha256,
        format="gguf",
        role=role,
        meta=dict(meta),
    )


def base_gguf(
    base_dir: Path,
    quantization: str,
    out_dir: Path,
    name: str,
    metadata: GGUFMetadata | None,
    revision: str | None,
) -> GGUFFile:
    """The base model as GGUF at `quantization`, reused from `out_dir` for the same revision.

    The converter and quantizer are deterministic, so a rebuild gives the same bytes; reuse
    only saves the time.
    """
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", revision or "unversioned")
    path = Path(out_dir) / key / f"{name}-base-{quantization}.gguf"
    if revision is not None and path.is_file():
        return describe(path, quantization)
    return write_gguf(base_dir, path, quantization, metadata)


def export_delta(
    base_dir: Path,
    adapter_dir: Path,
    merged_dir: Path,
    merged_file: GGUFFile,
    out_dir: Path,
    *,
    name: str,
    texts: Sequence[str] | None,
    examples: Sequence[Mapping[str, Any]] | None,
    reference: Reference | None,
    metadata: GGUFMetadata | None = None,
    base_revision: str | None = None,
    base_cache: Path | None = None,
    adapter_type: str = DEFAULT_ADAPTER_TYPE,
    tolerance: float | None = None,
    shape: Mapping[str, Any] | None = None,
) -> DeltaExport:
    """Base GGUF (same quantization as the merged phone file) + GGUF adapter, parity-checked."""
    out_dir = Path(out_dir)
    quant = merged_file.quantization
    try:
        base = base_gguf(
            base_dir, quant, base_cache or out_dir / "base", name, metadata, base_revision
        )
        adapter = convert_lora_to_gguf(
            adapter_dir, base_dir, out_dir / f"{name}-adapter-{adapter_type}.gguf", adapter_type
        )
    except (AdapterConversionError, ConversionError, RuntimeError) as exc:
        log.warning("no adapter files for %s: %s", name, exc)
        return DeltaExport(skipped=f"adapter GGUF not written: {exc}")
    try:
        parity = check_adapter_parity(
            merged_dir,
            base.path,
            adapter.file.path,
            merged_file.path,
            texts,
            examples,
            reference=reference,
            tolerance=tolerance,
        )
    except (LlamaCppUnavailable, AdapterError) as exc:  # no judge here: publish no delta
        log.warning("adapter path of %s not checked: %s", name, exc)
        return DeltaExport(skipped=f"adapter path not checked in llama.cpp: {exc}")
    result = DeltaExport(parity=[parity])
    if not parity.passed:
        log.warning("adapter path of %s not publishable: %s", name, parity.reason)
        result.skipped = f"parity failed: {parity.reason}"
        return result
    log.info("%s", parity.reason)
    # Published from the export folder: the cached base must not be moved by a later step.
    staged = out_dir / base.path.name
    if staged.resolve() != base.path.resolve():
        shutil.copyfile(base.path, staged)
    base_meta = {"revision": base_revision, **({"shape": dict(shape)} if shape else {})}
    result.files = [
        _entry(describe(staged, quant), "base", base_meta),
        _entry(adapter.file, "adapter", adapter.meta(base_sha256=base.sha256)),
    ]
    return result
