"""Benchmark GGUF export of the real SmolLM2 students: size, write time, parity perplexity.

Prints JSON lines. The baseline, measured in the same run, is the HF fp32 model itself
(safetensors size, perplexity on the same texts); every GGUF line carries its delta to it.

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

from tasks.export import check_parity, llama_cpp_missing_reason, write_gguf  # noqa: E402
from tasks.export.parity import reference_perplexity  # noqa: E402
from tasks.models.load import materialize_preset  # noqa: E402

RECORDS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct" / "records.jsonl"
)


def seed_responses(limit: int, path: Path = RECORDS) -> list[str]:
    """The first `limit` non-trivial reference answers of the seed tasks (never the eval part)."""
    texts = []
    with path.open() as handle:
        for line in handle:
            row = json.loads(line)
            if row["source"] == "seed_tasks" and len(row["response"].split()) >= 5:
                texts.append(row["response"])
            if len(texts) == limit:
                break
    return texts


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def bench_model(preset: str, texts: list[str], quants: list[str], out_dir: Path) -> None:
    hf_dir = materialize_preset(preset)
    started = time.perf_counter()
    reference = reference_perplexity(hf_dir, texts)
    emit(
        model=preset,
        format="hf-fp32",
        size_bytes=sum(p.stat().st_size for p in hf_dir.glob("*.safetensors")),
        ppl=round(reference[0], 4),
        n_tokens=reference[1],
        eval_s=round(time.perf_counter() - started, 2),
        note="baseline",
    )
    for quant in quants:
        started = time.perf_counter()
        gguf_file = write_gguf(hf_dir, out_dir / f"{preset}-{quant}.gguf", quant)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        parity = check_parity(hf_dir, gguf_file.path, texts, reference=reference)
        emit(
            model=preset,
            format=f"gguf-{quant}",
            size_bytes=gguf_file.size,
            size_vs_hf=round(
                gguf_file.size / sum(p.stat().st_size for p in hf_dir.glob("*.safetensors")), 3
            ),
            export_s=round(write_s, 2),
            ppl=round(parity.ppl_gguf, 4),
            ppl_hf=round(parity.ppl_reference, 4),
            relative_delta=round(parity.relative_delta, 5),
            tolerance=parity.tolerance,
            passed=parity.passed,
            parity_s=round(time.perf_counter() - started, 2),
            fallback_notes=len(gguf_file.notes),
        )
        gguf_file.path.unlink()  # a 135M F16 file is 270 MB; keep the disk clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=30)
    parser.add_argument(
        "--models", nargs="+", default=["smollm2-pruned-student", "smollm2-135m-instruct"]
    )
    parser.add_argument("--quantizations", nargs="+", default=["F16", "Q8_0", "Q4_0"])
    args = parser.parse_args(argv)
    texts = seed_responses(args.texts)
    emit(bench="export", texts=len(texts), llama_cpp=llama_cpp_missing_reason() or "available")
    out_dir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        for preset in args.models:
            bench_model(preset, texts, args.quantizations, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
