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


def test_phone_file_is_q4_k_m_and_smaller_than_the_shipped_q4_1(report) -> None:  # type: ignore[no-untyped-def]
    from tasks.models.load import smollm2_gguf_path

    files = {f.quantization: f for f in report.files}
    assert report.phone_file == "Q4_K_M", report.phone_reason
    assert files["Q4_K_M"].size < smollm2_gguf_path().stat().st_size
    for parity in report.parity:  # shown with -s: the figures behind the phone file
        print(f"smollm2-pruned-student {parity}")
    for item in report.files + report.skipped:
        print(f"smollm2-pruned-student {item}")
    for parity in report.parity:
        assert parity.judge == "llama.cpp", parity
        assert parity.passed or parity.quantization == "Q4_0", parity
    [q8] = [p for p in report.parity if p.quantization == "Q8_0"]
    assert q8.top1_agreement is not None and q8.top1_agreement >= 0.99, q8


def test_metadata_tokenization_and_detokenization_match_the_base_file(
    report, llama_cpp_src
) -> None:  # type: ignore[no-untyped-def]
    from tasks.models.load import smollm2_gguf_path

    base = LlamaCppModel(smollm2_gguf_path(), n_ctx=128)
    ours = LlamaCppModel(Path(next(f.path for f in report.files if f.quantization == "Q4_K_M")))
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
