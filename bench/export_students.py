"""The seed students' tiny stand-ins through the exporter, judged by llama.cpp: one JSON line
per student × quantization (size, loads, tokenization n of n, top-1 agreement, perplexity).

The baseline, measured in the same run, is transformers on the same HF model and tokens.

    python bench/export_students.py [--quantizations F16 Q8_0 Q4_0 Q4_K_M]
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

from tasks.export import base_metadata, check_parity, write_gguf_files  # noqa: E402
from tasks.export.llama_cpp import LlamaCppModel  # noqa: E402
from tasks.export.parity import reference_perplexity  # noqa: E402
from tasks.models.llama_cpp_source import llama_cpp_source  # noqa: E402
from tasks.models.seed_models import SEED_STUDENTS  # noqa: E402
from tasks.models.tiny_seed import seed_student_dir  # noqa: E402

TEXTS = [
    "Rewrite the sentence and make your writing clearer by keeping it concise.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "Give three tips for staying healthy during the winter months.",
    "How many days are there in a leap year? There are 366 days in a leap year.",
    "Translate the following sentence into French: The weather is nice today.",
    "Write a Python function that returns the sum of two numbers.",
]


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def tokenization_matches(path: Path, vocab: str) -> tuple[int, int]:
    """How many of llama.cpp's reference strings this file tokenizes to the reference ids."""
    pairs = llama_cpp_source().reference_tokenization(vocab)
    model = LlamaCppModel(path, vocab_only=True)
    try:
        return sum(model.tokenize(text) == ids for text, ids in pairs), len(pairs)
    finally:
        model.close()


def bench_student(name: str, quants: list[str], out_dir: Path) -> None:
    student = SEED_STUDENTS[name]
    hf_dir = seed_student_dir(name)
    reference = reference_perplexity(hf_dir, TEXTS)
    emit(student=name, format="hf-fp32", ppl=round(reference.ppl, 4), n_tokens=reference.n_tokens)
    started = time.perf_counter()
    metadata = base_metadata(f"{name}-student", "v1", hf_dir, student.real_model)
    files, skipped = write_gguf_files(hf_dir, out_dir, name, quants, metadata)
    emit(student=name, step="write", seconds=round(time.perf_counter() - started, 1))
    for item in skipped:
        emit(student=name, format=item.quantization, skipped=item.reason)
    for quant, item in files.items():
        ok, total = tokenization_matches(item.path, student.vocab)
        parity = check_parity(hf_dir, item.path, TEXTS, reference=reference)
        emit(
            student=name,
            format=quant,
            size_bytes=item.size,
            loads=True,
            tokenization=f"{ok}/{total}",
            top1_agreement=round(parity.top1_agreement or 0.0, 4),
            ppl=round(parity.ppl_gguf, 4),
            ppl_hf=round(parity.ppl_reference, 4),
            relative_delta=round(parity.relative_delta, 5),
            passed=parity.passed,
            judge=parity.judge,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantizations", nargs="+", default=["F16", "Q8_0", "Q4_0", "Q4_K_M"])
    parser.add_argument("--students", nargs="+", default=list(SEED_STUDENTS))
    args = parser.parse_args(argv)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-students-"))
    try:
        for name in args.students:
            bench_student(name, args.quantizations, out_dir / name)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
