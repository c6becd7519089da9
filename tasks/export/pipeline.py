"""Export for phones: merge, write each GGUF, check its parity, keep only the files that pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tasks.export.adapter_hook import DeltaWriter, record_delta
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

    def judge(quant: str) -> bool:
        """llama.cpp parity of the merged file at `quant`, once; a failure is deleted."""
        if quant in passed or any(s.quantization == quant for s in report.skipped):
            return quant in passed
        gguf_file = written[quant]
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
            return True
        reason = _failure(parity)
        log.warning("%s not publishable: %s", gguf_file.path.name, reason)
        report.skipped.append(Skipped(quant, reason))
        gguf_file.path.unlink(missing_ok=True)
        return False

    for quant in progress([q for q in plain if q in written], desc="llama.cpp parity", unit="file"):
        judge(quant)
    deltas = None
    if adapter_gguf and adapter_dir is not None:
        deltas = DeltaWriter(
            Path(base_dir), Path(adapter_dir), out_dir, name, parity_texts, parity_examples,
            reference, metadata, base_revision, base_cache, limits,
        )  # fmt: skip
    keep = set(plain)
    if PHONE in wanted:
        keep |= _choose_phone_file(report, written, judge, deltas)
    for quant, gguf_file in written.items():
        if quant in keep and quant in passed:
            report.files.append(gguf_file)
        else:  # a phone candidate that lost to a better one, or never needed
            gguf_file.path.unlink(missing_ok=True)
    if deltas is not None and report.files and PHONE not in wanted:
        first = report.files[0]  # explicit quantizations only: the first one carries the delta
        record_delta(report, first, deltas.attempt(report, first))
    return report


def _rank(quant: str) -> int:
    """Place in the phone ladder (files not in it sort first)."""
    return PHONE_CHOICES.index(quant) if quant in PHONE_CHOICES else -1


def _choose_phone_file(
    report: ExportReport,
    written: Mapping[str, GGUFFile],
    judge: Callable[[str], bool],
    deltas: DeltaWriter | None,
) -> set[str]:
    """The first rung of PHONE_CHOICES that phones can run, as the merged file and, when
    deltas are written, as base + adapter too (phones holding the base take that path).

    A rung whose merged file passes but whose base + adapter does not is passed over, said in
    the reason, and the next is tried; when no rung passes both, the first whose merged file
    passes ships without deltas, and the reason says so. A larger rung is never checked once
    a smaller one is chosen.
    """
    why: dict[str, str] = {}
    merged_only: str | None = None
    for quant in progress(list(PHONE_CHOICES), desc="phone ladder", unit="rung"):
        if quant not in written or not judge(quant):
            why[quant] = next(
                (s.reason for s in report.skipped if s.quantization == quant), "not written"
            )
            continue
        if deltas is None:
            return _chosen(report, quant, why)
        delta = deltas.attempt(report, written[quant])
        if delta.files:
            record_delta(report, written[quant], delta)
            return _chosen(report, quant, why)
        report.adapter_parity = [*report.adapter_parity, *delta.parity]
        why[quant] = f"merged passes, base + adapter does not ({delta.skipped})"
        log.info("phone ladder: %s %s; trying the next rung", quant, why[quant])
        merged_only = merged_only or quant
    if merged_only is not None:
        report.adapter_reason = "no rung passes base + adapter: " + "; ".join(
            f"{q}: {r}" for q, r in why.items()
        )
        chosen = _chosen(report, merged_only, {})
        report.phone_reason = f"{merged_only}, merged file only ({report.adapter_reason})"
        return chosen
    report.phone_reason = "no phone candidate passed parity: " + "; ".join(
        f"{q}: {why.get(q, 'not written')}" for q in PHONE_CHOICES
    )
    return set()


def _chosen(report: ExportReport, quant: str, passed_over: Mapping[str, str]) -> set[str]:
    """Record `quant` as the phone file, naming the smaller rungs passed over and why."""
    report.phone_file = quant
    better = [f"{q}: {r}" for q, r in passed_over.items() if _rank(q) < _rank(quant)]
    report.phone_reason = (
        f"{quant} passes parity" if not better else f"{quant} because " + "; ".join(better)
    )
    log.info("phone file: %s", report.phone_reason)
    return {quant}
