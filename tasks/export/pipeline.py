"""Export for phones: merge, write each GGUF, check its parity, keep only the files that pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.export.gguf_export import QUANT_TYPES, GGUFFile, write_gguf
from tasks.export.llama_cpp import Skipped, quantize_q4_k_m
from tasks.export.merge import merge_adapter
from tasks.export.parity import DEFAULT_TOLERANCES, ParityResult, check_parity, reference_perplexity

log = logging.getLogger(__name__)

SUPPORTED = (*QUANT_TYPES, "Q4_K_M")


@dataclass
class ExportReport:
    """What an export produced: publishable files, every parity result, and what was skipped."""

    merged_dir: Path
    files: list[GGUFFile] = field(default_factory=list)
    parity: list[ParityResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, small enough to pass between Prefect tasks."""
        out = asdict(self)
        out["merged_dir"] = str(self.merged_dir)
        for item in out["files"]:
            item["path"] = str(item["path"])
        return out


def export_for_phones(
    base_dir: Path,
    adapter_dir: Path | None,
    out_dir: Path,
    quantizations: Sequence[str] = ("Q8_0", "Q4_0"),
    parity_texts: Sequence[str] | None = None,
    tolerances: Mapping[str, float] | None = None,
    *,
    parity_examples: Sequence[Mapping[str, Any]] | None = None,
    name: str = "model",
) -> ExportReport:
    """Merge the adapter, write each quantization as GGUF and keep those within tolerance."""
    wanted = [q.upper() for q in quantizations]
    unknown = [q for q in wanted if q not in SUPPORTED]
    if unknown:
        raise ValueError(f"unknown quantizations {unknown}; supported: {list(SUPPORTED)}")
    if not parity_texts and not parity_examples:
        raise ValueError("export_for_phones needs parity_texts or parity_examples to check files")
    limits = {**DEFAULT_TOLERANCES, **{k.upper(): v for k, v in (tolerances or {}).items()}}
    out_dir = Path(out_dir)
    gguf_dir = out_dir / "gguf"

    started = time.perf_counter()
    merged = merge_adapter(Path(base_dir), adapter_dir, out_dir / "merged")
    report = ExportReport(merged_dir=merged)
    report.seconds["merge"] = time.perf_counter() - started
    reference = reference_perplexity(merged, parity_texts, parity_examples)

    # Q4_K_M is requantized from the F16 file, so F16 is written whenever it is asked for.
    to_write = [q for q in wanted if q != "Q4_K_M"]
    if "Q4_K_M" in wanted and "F16" not in to_write:
        to_write.append("F16")
    written: dict[str, GGUFFile] = {}
    for quant in to_write:
        started = time.perf_counter()
        written[quant] = write_gguf(merged, gguf_dir / f"{name}-{quant}.gguf", quant)
        report.seconds[f"write_{quant}"] = time.perf_counter() - started
    if "Q4_K_M" in wanted:
        result = quantize_q4_k_m(written["F16"].path, gguf_dir / f"{name}-Q4_K_M.gguf")
        if isinstance(result, Skipped):
            report.skipped.append(result)
        else:
            written["Q4_K_M"] = result
        if "F16" not in wanted:  # only Q4_K_M's source: never published, so not kept
            written.pop("F16").path.unlink(missing_ok=True)

    for quant, gguf_file in written.items():
        started = time.perf_counter()
        parity = check_parity(
            merged,
            gguf_file.path,
            parity_texts,
            parity_examples,
            tolerance=limits.get(quant, 0.15),
            reference=reference,
        )
        report.seconds[f"parity_{quant}"] = time.perf_counter() - started
        report.parity.append(parity)
        if parity.passed:
            report.files.append(gguf_file)
        else:
            reason = (
                f"parity failed: perplexity {parity.ppl_gguf:.4f} vs {parity.ppl_reference:.4f} "
                f"({parity.relative_delta:+.2%}, tolerance {parity.tolerance:.2%})"
            )
            log.warning("%s not publishable: %s", gguf_file.path.name, reason)
            report.skipped.append(Skipped(quant, reason))
    return report
