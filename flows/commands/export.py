"""`distillery export MODEL_DIR --out DIR --quant F16 Q8_0 Q4_K_M`: GGUF files for phones."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Kept here (not imported from tasks.export) so `distillery --help` stays fast.
QUANT_CHOICES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "PHONE")
DEFAULT_QUANTS = ("F16", "Q8_0", "Q4_K_M")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` command (heavy imports wait until it runs: the CLI starts fast)."""
    parser = subparsers.add_parser(
        "export",
        help="write GGUF files with llama.cpp and check them against the HF model",
        description=(
            "Merge (with --base and an adapter) or take a merged HF model, write GGUF files "
            "with llama.cpp's converter and quantizer, and check each in llama.cpp against "
            "the HF model (perplexity and top-1 agreement). Files that fail parity are "
            "removed. PHONE = Q4_K_M when it passes parity, else Q8_0."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="merged HF model, or the adapter")
    parser.add_argument("--base", help="base model folder or preset: MODEL_DIR is its adapter")
    parser.add_argument("--out", required=True, help="output folder (gguf/ and merged/ inside)")
    parser.add_argument(
        "--quant",
        nargs="+",
        default=list(DEFAULT_QUANTS),
        type=str.upper,
        choices=QUANT_CHOICES,
        metavar="QUANT",
        help=f"quantizations, any of: {' '.join(QUANT_CHOICES)}",
    )
    parser.add_argument("--name", help="file and general.name (default: the folder name)")
    parser.add_argument("--version", help="general.version, e.g. v3")
    parser.add_argument("--base-model", help="Hub id of the base (license, organisation)")
    parser.add_argument("--texts", help="parity texts, one per line (default: built-in texts)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


PARITY_TEXTS = (
    "Rewrite the sentence and make your writing clearer by keeping it concise.",
    "Give three tips for staying healthy during the winter months.",
    "Explain why the sky is blue in simple words that a child could understand.",
    "Write a Python function that returns the sum of two numbers.",
    "Translate the following sentence into French: The weather is nice today.",
    "How many days are there in a leap year? There are 366 days in a leap year.",
)


def _fail(message: str) -> int:
    print(f"distillery export: {message}", file=sys.stderr)
    return 2


def _resolve(path_or_preset: str) -> Path | None:
    path = Path(path_or_preset)
    if (path / "config.json").is_file():
        return path
    from tasks.models.presets import PRESETS

    if path_or_preset in PRESETS:
        from tasks.models.load import materialize_preset

        return materialize_preset(path_or_preset)
    return None


def run(args: argparse.Namespace) -> int:
    """Write and check the files; print one line per file (or the JSON report)."""
    model_dir = Path(args.model_dir)
    if args.base:
        base = _resolve(args.base)
        if base is None:
            return _fail(f"--base {args.base!r} is neither a HF model folder nor a preset")
        if not (model_dir / "adapter_config.json").is_file():
            return _fail(f"{model_dir} has no adapter_config.json (a PEFT adapter with --base)")
        adapter: Path | None = model_dir
    else:
        base, adapter = _resolve(args.model_dir), None
        if base is None:
            return _fail(
                f"{model_dir} is not a HF model folder (no config.json); adapters need --base"
            )
    texts = list(PARITY_TEXTS)
    if args.texts:
        if not Path(args.texts).is_file():
            return _fail(f"--texts {args.texts} does not exist")
        texts = [t for t in Path(args.texts).read_text().splitlines() if t.strip()]

    from tasks.export import base_metadata, export_for_phones
    from tasks.export.gguf_export import preset_metadata

    name = args.name or (args.base if args.base and not Path(args.base).exists() else None)
    name = name or model_dir.resolve().name
    metadata = preset_metadata(args.base, args.version) if args.base else None
    if metadata is None or args.name or args.base_model:
        metadata = base_metadata(name, args.version, base, args.base_model)
    report = export_for_phones(
        base, adapter, Path(args.out), args.quant, texts, name=name, metadata=metadata
    )
    if args.json:
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
