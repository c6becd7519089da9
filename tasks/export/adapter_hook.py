"""export_for_phones' adapter step: add base + adapter files to a report (kept out of
pipeline.py so the merged-file path reads as before)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.export.adapter_export import export_delta
from tasks.export.convert import GGUFMetadata
from tasks.export.parity import Reference
from tasks.runtime_meta import model_shape

if TYPE_CHECKING:
    from tasks.export.report import ExportReport

log = logging.getLogger(__name__)


def add_delta_files(
    report: ExportReport,
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    *,
    name: str,
    texts: Sequence[str] | None,
    examples: Sequence[Mapping[str, Any]] | None,
    reference: Reference,
    metadata: GGUFMetadata | None,
    base_revision: str | None,
    base_cache: Path | None,
    tolerances: Mapping[str, float],
) -> None:
    """Write and check the delta files for the phone's merged file; record them or why not."""
    by_quant = {f.quantization: f for f in report.files}
    merged = by_quant.get(report.phone_file or "") or report.files[0]
    delta = export_delta(
        base_dir,
        adapter_dir,
        report.merged_dir,
        merged,
        Path(out_dir) / "adapter",
        name=name,
        texts=texts,
        examples=examples,
        reference=reference,
        metadata=metadata,
        base_revision=base_revision,
        base_cache=base_cache,
        tolerance=tolerances.get(merged.quantization),
        shape=asdict(model_shape(report.merged_dir)),
    )
    report.delta_files = delta.files
    report.adapter_parity = delta.parity
    report.adapter_reason = delta.skipped or (
        f"base {merged.quantization} + adapter pass parity" if delta.files else ""
    )
    if delta.skipped:
        log.warning("%s: merged file only (%s)", name, delta.skipped)
