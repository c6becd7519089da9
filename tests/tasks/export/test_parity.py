"""Parity before publishing: the GGUF read back by llama.cpp vs the merged model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tasks.export import GGUFFile, Skipped, check_parity, llama_cpp_missing_reason
from tasks.export.parity import perplexity, score_examples, score_texts
from tasks.export.prefect_tasks import export_for_phones_task


@pytest.fixture(scope="module")
def llama_files(exported: dict) -> dict[str, Path]:
    return {
        q: exported["tiny-smollm2-like", q]
        for q in ("F16", "Q4_0")
        if ("tiny-smollm2-like", q) in exported
    }


JUDGE = "llama.cpp" if llama_cpp_missing_reason() is None else "transformers GGUF reader"


def test_f16_passes_and_q4_0_is_rejected_at_a_tight_tolerance(
    llama_dir: Path, llama_files: dict, parity_texts: list[str]
) -> None:
    if "Q4_0" not in llama_files:
        pytest.skip(str(llama_cpp_missing_reason()))
    f16 = check_parity(llama_dir, llama_files["F16"], parity_texts, tolerance=0.005)
    assert f16.quantization == "F16" and f16.passed and f16.n_tokens > 20
    assert abs(f16.relative_delta) < 0.005 and f16.top1_agreement == 1.0
    assert f16.judge.startswith(JUDGE)
    q4 = check_parity(llama_dir, llama_files["Q4_0"], parity_texts, tolerance=0.0001)
    assert q4.quantization == "Q4_0" and not q4.passed and q4.tolerance == 0.0001
    assert q4.ppl_reference == pytest.approx(f16.ppl_reference)
    assert q4.relative_delta == pytest.approx((q4.ppl_gguf - q4.ppl_reference) / q4.ppl_reference)
    # The same file at its default tolerance (15% for Q4_0) is publishable.
    assert check_parity(llama_dir, llama_files["Q4_0"], parity_texts).passed


def test_perplexity_matches_mean_loss(llama_dir: Path, parity_texts: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(llama_dir)
    model = AutoModelForCausalLM.from_pretrained(llama_dir).eval()
    ids = tokenizer(parity_texts[0], return_tensors="pt")["input_ids"]
    loss = model(ids, labels=ids).loss.item()
    ppl, n = perplexity(model, score_texts(tokenizer, parity_texts[:1]))
    assert n == ids.shape[1] - 1 and ppl == pytest.approx(math.exp(loss), rel=1e-5)


def test_examples_score_only_the_answer(llama_dir: Path, llama_files: dict) -> None:
    tokenizer = AutoTokenizer.from_pretrained(llama_dir)
    example = {
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is Paris."},
        ]
    }
    [(ids, start)] = score_examples(tokenizer, [example])
    answer = tokenizer.decode(ids[start:])
    assert answer.startswith("The capital of France is Paris.") and "user" not in answer
    result = check_parity(llama_dir, llama_files["F16"], examples=[example], tolerance=0.005)
    assert result.passed and result.n_tokens == len(ids) - start and result.top1_agreement == 1.0


def test_missing_inputs_are_refused(llama_dir: Path, llama_files: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="texts or examples"):
        check_parity(llama_dir, llama_files["F16"])
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        check_parity(llama_dir, tmp_path / "nope.gguf", ["text"])
    with pytest.raises(ValueError, match="assistant"):
        check_parity(llama_dir, llama_files["F16"], examples=[{"messages": []}])


def test_export_for_phones_keeps_only_files_within_tolerance(
    phi3_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    report = export_for_phones_task.fn(
        phi3_dir,
        None,
        tmp_path / "export",
        quantizations=("F16", "Q8_0", "Q4_0", "Q4_K_M"),
        parity_texts=parity_texts,
        tolerances={"Q4_0": 0.0001},
        name="tiny-phi3",
    )
    json.dumps(report.to_dict())  # small and serialisable, as flows pass it on
    passed = {f.quantization for f in report.files}
    assert {"F16", "Q8_0"} <= passed and "Q4_0" not in passed
    skipped = {s.quantization: s.reason for s in report.skipped}
    if llama_cpp_missing_reason() is not None:
        assert "llama-cpp-python" in skipped["Q4_K_M"] and "llama-cpp-python" in skipped["Q4_0"]
    else:
        assert "parity failed in llama.cpp" in skipped["Q4_0"]
        assert not (tmp_path / "export" / "gguf" / "tiny-phi3-Q4_0.gguf").exists()
    assert {p.quantization for p in report.parity} >= {"F16", "Q8_0"}
    for item in report.files:
        assert item.path.is_file() and len(item.sha256) == 64
    assert (report.merged_dir / "config.json").is_file()


def test_export_refuses_unknown_quantization_and_missing_texts(
    llama_dir: Path, tmp_path: Path
) -> None:
    from tasks.export import export_for_phones

    with pytest.raises(ValueError, match="IQ1_S"):
        export_for_phones(llama_dir, None, tmp_path, ("IQ1_S",), ["text"])
    with pytest.raises(ValueError, match="parity"):
        export_for_phones(llama_dir, None, tmp_path, ("Q8_0",))


def test_phone_file_is_the_first_of_the_ladder_that_passes_with_the_reason(
    llama_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    from tasks.export import PHONE, export_for_phones

    if llama_cpp_missing_reason() is not None:
        pytest.skip(str(llama_cpp_missing_reason()))
    report = export_for_phones(llama_dir, None, tmp_path / "a", (PHONE,), parity_texts)
    assert [f.quantization for f in report.files] == ["Q4_K_M"] and report.phone_file == "Q4_K_M"
    assert not list((tmp_path / "a" / "gguf").glob("model-Q[48]_[01].gguf"))
    # Q4_1 and Q8_0 were written but, Q4_K_M passing, never checked: one parity run.
    assert [p.quantization for p in report.parity] == ["Q4_K_M"]
    strict = export_for_phones(
        llama_dir, None, tmp_path / "b", (PHONE,), parity_texts, {"Q4_K_M": 1e-6}
    )
    assert [f.quantization for f in strict.files] == ["Q4_1"] and strict.phone_file == "Q4_1"
    assert "Q4_K_M: parity failed in llama.cpp" in strict.phone_reason
    stricter = export_for_phones(
        llama_dir, None, tmp_path / "c", (PHONE,), parity_texts, {"Q4_K_M": 1e-6, "Q4_1": 1e-6}
    )
    assert [f.quantization for f in stricter.files] == ["Q8_0"]
    assert "Q4_K_M: parity failed" in stricter.phone_reason
    assert "Q4_1: parity failed" in stricter.phone_reason
    # Asked for beside PHONE, F16 and Q8_0 are kept; the phone ladder still starts at Q4_K_M.
    both = export_for_phones(llama_dir, None, tmp_path / "d", ("F16", "Q8_0", PHONE), parity_texts)
    assert [p.quantization for p in both.parity] == ["F16", "Q8_0", "Q4_K_M"]
    assert both.phone_file == "Q4_K_M"
    assert sorted(f.quantization for f in both.files) == ["F16", "Q4_K_M", "Q8_0"]


def test_q4_k_m_source_f16_is_not_left_behind(
    llama_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    from tasks.export import export_for_phones

    report = export_for_phones(llama_dir, None, tmp_path, ("Q8_0", "Q4_K_M"), parity_texts)
    kept = sorted(f.quantization for f in report.files)
    assert not (tmp_path / "gguf" / "model-F16.gguf").exists()
    if llama_cpp_missing_reason() is not None:
        assert kept == ["Q8_0"] and [s.quantization for s in report.skipped] == ["Q4_K_M"]
    else:
        assert kept == ["Q4_K_M", "Q8_0"] and report.skipped == []


def test_prefect_task_wrappers_chain_with_typed_values(
    llama_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    from tasks.export.prefect_tasks import (
        check_parity_task,
        merge_adapter_task,
        quantize_q4_k_m_task,
        write_gguf_task,
    )

    merged = merge_adapter_task.fn(llama_dir, None, tmp_path / "merged")
    written = write_gguf_task.fn(merged, tmp_path / "m-F16.gguf", "F16")
    assert written.quantization == "F16" and written.path.is_file()
    parity = check_parity_task.fn(merged, written.path, parity_texts)
    assert parity.passed and parity.tolerance == 0.005
    q4km = quantize_q4_k_m_task.fn(written.path, tmp_path / "m-Q4_K_M.gguf")
    if llama_cpp_missing_reason() is not None:
        assert isinstance(q4km, Skipped) and "llama-cpp-python" in q4km.reason
    else:
        assert isinstance(q4km, GGUFFile) and q4km.quantization == "Q4_K_M"
