"""export_for_phones' adapter step: base + adapter files for a merged file, or why not."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.export.adapter_export import DeltaExport, export_delta
from tasks.export.convert import GGUFMetadata
from tasks.export.files import GGUFFile
from tasks.export.parity import Reference
from tasks.runtime_meta import model_shape

if TYPE_CHECKING:
    from tasks.export.report import ExportReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeltaWriter:
    """Writes and checks base + adapter for one merged file: what export_for_phones needs to
    try the adapter path at each rung of the phone ladder."""

    base_dir: Path
    adapter_dir: Path
    out_dir: Path
    name: str
    texts: Sequence[str] | None
    examples: Sequence[Mapping[str, Any]] | None
    reference: Reference
    metadata: GGUFMetadata | None
    base_revision: str | None
    base_cache: Path | None
    tolerances: Mapping[str, float]

    def attempt(self, report: ExportReport, merged: GGUFFile) -> DeltaExport:
        """Base at `merged`'s quantization + the GGUF adapter, judged against `merged`."""
        return export_delta(
            self.base_dir,
            self.adapter_dir,
            report.merged_dir,
            merged,
            Path(self.out_dir) / "adapter",
            name=self.name,
            texts=self.texts,
            examples=self.examples,
            reference=self.reference,
            metadata=self.metadata,
            base_revision=self.base_revision,
            base_cache=self.base_cache,
            tolerance=self.tolerances.get(merged.quantization),
            shape=asdict(model_shape(report.merged_dir)),
        )


def record_delta(report: ExportReport, merged: GGUFFile, delta: DeltaExport) -> None:
    """Keep the delta files of `merged` on the report, or say why there are none."""
    report.delta_files = delta.files
    report.adapter_parity = [*report.adapter_parity, *delta.parity]
    report.adapter_reason = delta.skipped or (
        f"base {merged.quantization} + adapter pass parity" if delta.files else ""
    )
    if delta.skipped:
        log.warning("%s: merged file only (%s)", report.merged_dir.name, delta.skipped)
