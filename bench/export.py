"""Benchmark GGUF export of the real SmolLM2 students: size, write time, parity in llama.cpp.

Prints JSON lines. The baseline, measured in the same run, is the HF fp32 model itself
(safetensors size, perplexity on the same texts); every GGUF line carries its delta to it and
its top-1 agreement, both measured by llama.cpp (the writer is llama.cpp's converter, the
quantizer llama.cpp's). `previous` lines repeat the figures of the earlier pure-Python
writer, read back by transformers (pruned student, 30 texts), for comparison. `ceiling`
lines give the top-1 agreement of the HF model with its weights rounded to Q8_0/Q4_0 by
gguf-py and run in fp32 by transformers: the most any runtime could keep at that precision,
so a gap to the llama.cpp line is the runtime's (activation rounding), not the exporter's.

    python bench/export.py [--texts 30] [--models smollm2-pruned-student smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tasks.export import check_parity, llama_cpp_missing_reason, write_gguf_files  # noqa: E402
from tasks.export.gguf_export import preset_metadata  # noqa: E402
from tasks.export.parity import Reference, reference_of, reference_perplexity, score_texts  # noqa: E402
from tasks.models.load import materialize_preset, smollm2_gguf_path  # noqa: E402
from tasks.sampledata import training_tasks

# The earlier writer (tasks/export/gguf_export.py before llama.cpp's converter), pruned student:
# size in MB, perplexity delta vs HF read back by transformers, and its verdict.
PREVIOUS = {
    "F16": (228, 0.0002, "passed"),
    "Q8_0": (122, 0.0052, "passed"),
    "Q4_0": (80, 0.328, "refused"),
}


def seed_responses(limit: int) -> list[str]:
    """`limit` prompt + answer texts from the built-in training tasks (never the benchmark)."""
    return [f"{t.prompt}\n{t.answer}" for t in training_tasks()[:limit]]


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def rounding_ceiling(hf_dir: Path, texts: list[str], reference: Reference, quant: str) -> float:
    """Top-1 agreement with `reference` of the HF model whose matrices are rounded to `quant`."""
    import torch
    from gguf import GGMLQuantizationType, quants
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kind = GGMLQuantizationType[quant]
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:  # what llama.cpp quantizes; norms and biases stay as they are
                rounded = quants.dequantize(quants.quantize(param.numpy(), kind), kind)
                param.copy_(torch.from_numpy(rounded.reshape(param.shape)))
    rounded_ref = reference_of(model, score_texts(AutoTokenizer.from_pretrained(hf_dir), texts))
    pairs = [
        (a, b)
        for ours, theirs in zip(rounded_ref.top1, reference.top1, strict=True)
        for a, b in zip(ours, theirs, strict=True)
    ]
    return sum(a == b for a, b in pairs) / len(pairs)


def bench_model(preset: str, texts: list[str], quants: list[str], out_dir: Path) -> None:
    hf_dir = materialize_preset(preset)
    hf_size = sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))
    started = time.perf_counter()
    reference = reference_perplexity(hf_dir, texts)
    emit(
        model=preset,
        format="hf-fp32",
        size_bytes=hf_size,
        ppl=round(reference.ppl, 4),
        n_tokens=reference.n_tokens,
        eval_s=round(time.perf_counter() - started, 2),
        note="baseline",
    )
    started = time.perf_counter()
    files, skipped = write_gguf_files(hf_dir, out_dir, preset, quants, preset_metadata(preset))
    emit(model=preset, step="write", seconds=round(time.perf_counter() - started, 2))
    for item in skipped:
        emit(model=preset, format=f"gguf-{item.quantization}", skipped=item.reason)
    for quant, gguf_file in files.items():
        started = time.perf_counter()
        parity = check_parity(hf_dir, gguf_file.path, texts, reference=reference)
        emit(
            model=preset,
            format=f"gguf-{quant}",
            size_bytes=gguf_file.size,
            size_vs_hf=round(gguf_file.size / hf_size, 3),
            ppl=round(parity.ppl_gguf, 4),
            ppl_hf=round(parity.ppl_reference, 4),
            relative_delta=round(parity.relative_delta, 5),
            top1_agreement=round(parity.top1_agreement or 0.0, 4),
            tolerance=parity.tolerance,
            passed=parity.passed,
            judge=parity.judge,
            parity_s=round(time.perf_counter() - started, 2),
        )
        if quant in ("Q8_0", "Q4_1", "Q4_0"):
            emit(
                model=preset,
                format=f"gguf-{quant}",
                ceiling=True,
                top1_agreement=round(rounding_ceiling(hf_dir, texts, reference, quant), 4),
                judge="transformers, fp32 math on gguf-py-rounded weights",
            )
        if preset == "smollm2-pruned-student" and quant in PREVIOUS:
            size_mb, delta, verdict = PREVIOUS[quant]
            emit(
                model=preset,
                format=f"gguf-{quant}",
                previous=True,
                size_bytes=size_mb * 1_000_000,
                relative_delta=delta,
                verdict=verdict,
                judge="transformers GGUF reader (earlier writer)",
            )
        gguf_file.path.unlink()  # a 135M F16 file is 270 MB; keep the disk clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=30)
    parser.add_argument(
        "--models", nargs="+", default=["smollm2-pruned-student", "smollm2-135m-instruct"]
    )
    parser.add_argument(
        "--quantizations", nargs="+", default=["F16", "Q8_0", "Q4_1", "Q4_0", "Q4_K_M"]
    )
    args = parser.parse_args(argv)
    texts = seed_responses(args.texts)
    emit(bench="export", texts=len(texts), llama_cpp=llama_cpp_missing_reason() or "available")
    shipped = smollm2_gguf_path()  # the original model's own phone file: the size to beat
    emit(model="smollm2-135m-instruct", format="shipped-Q4_1", size_bytes=shipped.stat().st_size)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        for preset in args.models:
            bench_model(preset, texts, args.quantizations, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
