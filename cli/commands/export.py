"""`distillery export MODEL_DIR --out DIR --quant F16 Q8_0 Q4_K_M`: GGUF files for phones."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

# Kept here (not imported from tasks.export) so `distillery --help` stays fast.
QUANT_CHOICES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "PHONE")
DEFAULT_QUANTS = ("F16", "Q8_0", "Q4_K_M")


PARITY_TEXTS = (
    "Rewrite the sentence and make your writing clearer by keeping it concise.",
    "Give three tips for staying healthy during the winter months.",
    "Explain why the sky is blue in simple words that a child could understand.",
    "Write a Python function that returns the sum of two numbers.",
    "Translate the following sentence into French: The weather is nice today.",
    "How many days are there in a leap year? There are 366 days in a leap year.",
)


def _fail(message: str) -> int:
    print(f"✗ {message}", file=sys.stderr)
    return 2


def _resolve(path_or_preset: str) -> Path | None:
    path = Path(path_or_preset)
    if (path / "config.json").is_file():
        return path
    from tasks.models.presets import find_preset

    if find_preset(path_or_preset) is not None:
        from tasks.models.load import materialize_preset

        return materialize_preset(path_or_preset)
    return None


def export(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="merged HF model folder, or the adapter")
    ],
    more_quants: Annotated[
        list[str] | None,
        typer.Argument(metavar="[QUANT...]", help="more quantizations after --quant", hidden=True),
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder (gguf/ and merged/ inside)")] = Path(
        "export"
    ),
    quant: Annotated[
        list[str] | None,
        typer.Option(
            metavar="QUANT [QUANT...]",
            help=f"quantizations; choices: {', '.join(QUANT_CHOICES)}; PHONE = the first of "
            f"Q4_K_M, Q4_1, Q8_0 that passes parity [default: {' '.join(DEFAULT_QUANTS)}]",
        ),
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="base model folder or preset: MODEL_DIR is its adapter")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="file and general.name [the folder name]")
    ] = None,
    version: Annotated[str | None, typer.Option(help="general.version, e.g. v3")] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Hub id of the base (license, organisation)")
    ] = None,
    texts: Annotated[
        Path | None, typer.Option(help="parity texts, one per line [built-in texts]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> int:
    """Write GGUF files with llama.cpp and check each against the HF model.

    Merges the adapter into --base (or takes a merged model), writes the files with
    llama.cpp's converter and quantizer, and judges each in llama.cpp (perplexity and top-1
    agreement against transformers). Files that fail parity are removed.
    Example: distillery export runs/adapter --base smollm2-pruned-student --out out --quant
    F16 Q8_0 Q4_K_M
    """
    quants = [q.upper() for q in [*(quant or []), *(more_quants or [])]] or list(DEFAULT_QUANTS)
    unknown = [q for q in quants if q not in QUANT_CHOICES]
    if unknown:
        return _fail(f"unknown quantization {', '.join(unknown)}; choose from {QUANT_CHOICES}")
    if base:
        base_dir = _resolve(base)
        if base_dir is None:
            return _fail(f"--base {base!r} is neither a HF model folder nor a preset")
        if not (model_dir / "adapter_config.json").is_file():
            return _fail(f"{model_dir} has no adapter_config.json (a PEFT adapter with --base)")
        adapter: Path | None = model_dir
    else:
        base_dir, adapter = _resolve(str(model_dir)), None
        if base_dir is None:
            return _fail(
                f"{model_dir} is not a HF model folder (no config.json); adapters need --base"
            )
    parity_texts = list(PARITY_TEXTS)
    if texts:
        if not texts.is_file():
            return _fail(f"--texts {texts} does not exist")
        parity_texts = [t for t in texts.read_text().splitlines() if t.strip()]

    from tasks.export import base_metadata, export_for_phones
    from tasks.export.gguf_export import preset_metadata

    file_name = name or (base if base and not Path(base).exists() else None)
    file_name = file_name or model_dir.resolve().name
    metadata = preset_metadata(base, version) if base else None
    if metadata is None or name or base_model:
        metadata = base_metadata(file_name, version, base_dir, base_model)
    report = export_for_phones(
        base_dir, adapter, out, quants, parity_texts, name=file_name, metadata=metadata
    )
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return 0 if report.files else 1
    parity = {p.quantization: p for p in report.parity}
    print(f"{'file':<40} {'quant':<7} {'MB':>8} {'sha256':<16} {'ppl Δ':>8} {'top-1':>6}  judge")
    for item in report.files:
        p = parity.get(item.quantization)
        delta = f"{p.relative_delta:+.2%}" if p else "-"
        top1 = f"{p.top1_agreement:.1%}" if p and p.top1_agreement is not None else "-"
        print(
            f"{item.path.name:<40} {item.quantization:<7} {item.size / 1e6:>8.1f} "
            f"{item.sha256[:16]:<16} {delta:>8} {top1:>6}  {p.judge if p else '-'}"
        )
        print(f"  sha256 {item.sha256}  {item.path}")
    for skipped in report.skipped:
        print(f"not kept: {skipped.quantization}: {skipped.reason}")
    if report.phone_file or report.phone_reason:
        print(f"phone file: {report.phone_reason}")
    return 0 if report.files else 1
