"""Export for phones: merge, write each GGUF, check its parity, keep only the files that pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasks.export.adapter_hook import add_delta_files
from tasks.export.convert import GGUFMetadata
from tasks.export.gguf_export import QUANTIZATIONS, GGUFFile, preset_metadata, write_gguf_files
from tasks.export.llama_cpp import Skipped
from tasks.export.merge import merge_adapter
from tasks.export.parity import DEFAULT_TOLERANCES, ParityResult, check_parity, reference_perplexity
from tasks.export.report import ExportReport
from tasks.progress import progress

log = logging.getLogger(__name__)

# "PHONE": the file phones should run, the first of PHONE_CHOICES that passes parity (said
# why). Q4_1 sits between the two because the embedded SmolLM2 ships as Q4_1: a student
# made from those weights keeps that grid, measured on the pruned student in llama.cpp at
# +0.02% perplexity and 95.2% top-1 in 85 MB, where Q4_K_M lost 14% (576 columns are no
# multiple of 256, so most tensors fall back to Q5_0, a second rounding) and Q8_0 is 122 MB.
PHONE = "PHONE"
PHONE_CHOICES = ("Q4_K_M", "Q4_1", "Q8_0")
PHONE_HELP = "the first of Q4_K_M, Q4_1, Q8_0 that passes llama.cpp parity"
SUPPORTED = (*QUANTIZATIONS, PHONE)
DEFAULT_QUANTIZATIONS = (PHONE,)


def _failure(parity: ParityResult) -> str:
    top1 = f", top-1 agreement {parity.top1_agreement:.1%} (min {parity.min_top1:.0%})"
    return (
        f"parity failed in {parity.judge}: perplexity {parity.ppl_gguf:.4f} vs "
        f"{parity.ppl_reference:.4f} ({parity.relative_delta:+.2%}, tolerance "
        f"{parity.tolerance:.2%}){top1 if parity.top1_agreement is not None else ''}"
    )


def export_for_phones(
    base_dir: Path,
    adapter_dir: Path | None,
    out_dir: Path,
    quantizations: Sequence[str] = DEFAULT_QUANTIZATIONS,
    parity_texts: Sequence[str] | None = None,
    tolerances: Mapping[str, float] | None = None,
    *,
    parity_examples: Sequence[Mapping[str, Any]] | None = None,
    name: str = "model",
    metadata: GGUFMetadata | None = None,
    adapter_gguf: bool = False,
    base_revision: str | None = None,
    base_cache: Path | None = None,
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
    plain = [q for q in wanted if q != PHONE]
    to_write = list(dict.fromkeys(plain + (list(PHONE_CHOICES) if PHONE in wanted else [])))

    if metadata is None:  # a preset name brings its base model's license, organisation, pre
        metadata = preset_metadata(name)
    started = time.perf_counter()
    written, skipped = write_gguf_files(merged, gguf_dir, name, to_write, metadata)
    report.seconds["write"] = time.perf_counter() - started
    report.skipped.extend(skipped)

    passed: dict[str, GGUFFile] = {}
    # Asked-for files first, then the phone candidates in order, until one passes: a later,
    # larger candidate is not checked (nor kept) once a smaller one is good enough.
    order = sorted(written, key=lambda q: (q not in plain, _rank(q)))
    checks = [(q, written[q]) for q in order]
    for quant, gguf_file in progress(checks, desc="llama.cpp parity", unit="file"):
        if quant not in plain and any(
            q in PHONE_CHOICES and _rank(q) < _rank(quant) for q in passed
        ):
            gguf_file.path.unlink(missing_ok=True)
            continue
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
            passed[quant] = gguf_file
        else:
            reason = _failure(parity)
            log.warning("%s not publishable: %s", gguf_file.path.name, reason)
            report.skipped.append(Skipped(quant, reason))
            gguf_file.path.unlink(missing_ok=True)
    keep = set(plain)
    if PHONE in wanted:
        keep |= _choose_phone_file(report, passed)
    for quant, gguf_file in passed.items():
        if quant in keep:
            report.files.append(gguf_file)
        else:  # written only as a phone candidate that lost to a better one
            gguf_file.path.unlink(missing_ok=True)
    if adapter_gguf and adapter_dir is not None and report.files:
        add_delta_files(
            report, Path(base_dir), Path(adapter_dir), out_dir, name=name, texts=parity_texts,
            examples=parity_examples, reference=reference, metadata=metadata,
            base_revision=base_revision, base_cache=base_cache, tolerances=limits,
        )  # fmt: skip
    return report


def _rank(quant: str) -> int:
    """Place in the phone ladder (files not in it sort first)."""
    return PHONE_CHOICES.index(quant) if quant in PHONE_CHOICES else -1


def _choose_phone_file(report: ExportReport, passed: Mapping[str, GGUFFile]) -> set[str]:
    """The first of PHONE_CHOICES that passed parity; the reason names what was passed over."""
    reasons = {s.quantization: s.reason for s in report.skipped}
    for i, quant in enumerate(PHONE_CHOICES):
        if quant in passed:
            report.phone_file = quant
            better = [f"{q}: {reasons.get(q, 'not written')}" for q in PHONE_CHOICES[:i]]
            report.phone_reason = (
                f"{quant} passes parity" if not better else f"{quant} because " + "; ".join(better)
            )
            log.info("phone file: %s", report.phone_reason)
            return {quant}
    report.phone_reason = "no phone candidate passed parity: " + "; ".join(
        f"{q}: {reasons.get(q, 'not written')}" for q in PHONE_CHOICES
    )
    return set()
