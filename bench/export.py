"""Benchmark GGUF export of the real SmolLM2 students: size, write time, parity in llama.cpp.

Prints JSON lines. The baseline, measured in the same run, is the HF fp32 model itself
(safetensors size, perplexity on the same texts); every GGUF line carries its delta to it and
its top-1 agreement, both measured by llama.cpp (the writer is llama.cpp's converter, the
quantizer llama.cpp's). `previous` lines repeat the figures of the earlier pure-Python
writer, read back by transformers (pruned student, 30 texts), for comparison.

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
from tasks.export.parity import reference_perplexity  # noqa: E402
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
    parser.add_argument("--quantizations", nargs="+", default=["F16", "Q8_0", "Q4_0", "Q4_K_M"])
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
