"""The real SmolLM2 students through the exporter, judged by llama.cpp against the base's own
shipped file (slow: minutes on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.export import PHONE, export_for_phones, llama_cpp_missing_reason
from tasks.export.llama_cpp import LlamaCppModel
from tests.tasks.export.conftest import PARITY_TEXTS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        llama_cpp_missing_reason() is not None, reason=str(llama_cpp_missing_reason())
    ),
]
STRINGS = ["test ' s .", "Hello world, it's 2024!", "  two  spaces\n\nand 12345 digits", "Äpfel ½"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tasks.models.load import materialize_preset

    out = tmp_path_factory.mktemp("smollm2-export")
    return export_for_phones(
        materialize_preset("smollm2-pruned-student"),
        None,
        out,
        ("F16", "Q8_0", "Q4_0", PHONE),
        PARITY_TEXTS,
        name="smollm2-pruned-student",
    )


def test_phone_file_is_the_first_of_the_ladder_that_passes_with_the_reason(report) -> None:  # type: ignore[no-untyped-def]
    from tasks.models.load import smollm2_gguf_path

    for item in report.parity + report.files + report.skipped:  # shown with -s
        print(f"smollm2-pruned-student {item}")
    print(f"smollm2-pruned-student shipped Q4_1 {smollm2_gguf_path().stat().st_size} bytes")
    print(f"smollm2-pruned-student phone file: {report.phone_reason}")
    parity = {p.quantization: p for p in report.parity}
    assert all(p.judge == "llama.cpp" for p in report.parity)
    assert parity["F16"].passed and parity["Q8_0"].passed
    # measured 95.1% (58 of 61 tokens) in llama.cpp; bench/export.py shows why not 99%: the
    # weights rounded to Q8_0 alone keep 98.6% in fp32 math, llama.cpp's Q8 activations the rest
    assert parity["Q8_0"].top1_agreement >= 0.95, parity["Q8_0"]
    if parity["Q4_K_M"].passed:
        assert report.phone_file == "Q4_K_M"
    else:  # measured: +14-18% perplexity; SmolLM2's own Q4_1 grid then keeps the model
        assert report.phone_file == "Q4_1" and "Q4_K_M: parity failed" in report.phone_reason
        assert parity["Q4_1"].passed
        phone = next(f for f in report.files if f.quantization == "Q4_1")
        assert phone.size < smollm2_gguf_path().stat().st_size  # smaller than the teacher's file


def test_metadata_tokenization_and_detokenization_match_the_base_file(
    report, llama_cpp_src
) -> None:  # type: ignore[no-untyped-def]
    from tasks.models.load import smollm2_gguf_path

    base = LlamaCppModel(smollm2_gguf_path(), n_ctx=128)
    ours = LlamaCppModel(Path(next(f.path for f in report.files if f.quantization == "Q8_0")))
    try:
        for key in ("tokenizer.ggml.pre", "general.license", "general.organization"):
            assert ours.metadata[key] == base.metadata[key], key
        assert ours.metadata["general.name"] == "smollm2-pruned-student"
        texts = STRINGS + [t for t, _ in llama_cpp_src.reference_tokenization("llama-bpe")]
        for text in texts:
            ids = base.tokenize(text)
            assert ours.tokenize(text) == ids, repr(text)
            assert ours.detokenize(ids) == base.detokenize(ids), repr(text)
    finally:
        base.close()
        ours.close()
