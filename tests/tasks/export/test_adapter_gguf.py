"""The adapter path in llama.cpp: base GGUF + GGUF adapter answers as the merged file does,
and one loaded base swaps between two agents' adapters at run time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from tasks.export import llama_cpp_missing_reason
from tasks.export.adapter_gguf import (
    AdapterConversionError,
    adapter_gguf_fields,
    convert_lora_to_gguf,
)
from tasks.export.adapter_parity import check_adapter_parity
from tasks.export.adapter_runtime import BaseWithAdapters, greedy_ids
from tasks.export.gguf_export import write_gguf
from tasks.export.llama_cpp import LlamaCppModel
from tasks.export.parity import gguf_quantization
from tests.tasks.export.adapters import adapter_set, make_adapter

pytestmark = pytest.mark.skipif(
    llama_cpp_missing_reason() is not None, reason=str(llama_cpp_missing_reason())
)

# N fixed prompts for greedy decoding.
PROMPTS = [
    "Give three tips for staying healthy.",
    "The capital of France is",
    "def add(a, b):",
    "Once upon a time, in a small village,",
    "Translate to French: good morning",
    "List the planets of the solar system:",
]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def base_f16(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf(llama_dir, tmp_path_factory.mktemp("base") / "base-F16.gguf", "F16").path


@pytest.fixture(scope="module")
def two_adapters(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Two agents' adapters on the same base, each with its merged model and merged GGUF."""
    out = tmp_path_factory.mktemp("agents")
    return {
        agent: adapter_set(llama_dir, out, seed) for agent, seed in (("support", 1), ("coder", 2))
    }


def prompt_ids(hf_dir: Path) -> list[list[int]]:
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]


def merged_greedy(merged_gguf: Path, ids: list[list[int]]) -> list[list[int]]:
    model = LlamaCppModel(merged_gguf, n_ctx=128)
    try:
        return [greedy_ids(model, p, MAX_TOKENS) for p in ids]
    finally:
        model.close()


def test_adapter_gguf_is_llama_cpp_lora_format(two_adapters: dict, llama_dir: Path) -> None:
    fields = adapter_gguf_fields(two_adapters["support"]["adapter_gguf"])
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == 16.0
    full = (llama_dir / "model.safetensors").stat().st_size
    assert two_adapters["support"]["adapter_gguf"].stat().st_size < full / 4
    # It declares no file type; its tensors name it (the parity log line shows this).
    assert "general.file_type" not in fields
    assert gguf_quantization(two_adapters["support"]["adapter_gguf"]) == "F16"


def test_base_plus_adapter_matches_merged_file(
    llama_dir: Path, base_f16: Path, two_adapters: dict, parity_texts: list[str]
) -> None:
    """Greedy tokens identical on every fixed prompt; perplexity within the F16 tolerance."""
    one = two_adapters["support"]
    parity = check_adapter_parity(
        one["merged_dir"], base_f16, one["adapter_gguf"], one["merged_gguf"], parity_texts,
        prompts=PROMPTS, max_tokens=MAX_TOKENS,
    )  # fmt: skip
    assert parity.judge == "llama.cpp" and parity.base_quantization == "F16"
    assert parity.greedy_prompts == len(PROMPTS) and parity.greedy_same == len(PROMPTS)
    assert abs(parity.relative_delta) <= parity.tolerance == 0.005
    assert parity.top1_agreement == 1.0 and parity.passed, parity.reason
    # The adapter matters: the plain base answers differently, so the check can fail.
    ids = prompt_ids(llama_dir)
    assert merged_greedy(base_f16, ids) != merged_greedy(one["merged_gguf"], ids)


def test_adapter_parity_fails_for_the_wrong_adapter(
    base_f16: Path, two_adapters: dict, parity_texts: list[str]
) -> None:
    """The coder adapter judged against the support merged model: refused."""
    support, coder = two_adapters["support"], two_adapters["coder"]
    parity = check_adapter_parity(
        support["merged_dir"], base_f16, coder["adapter_gguf"], support["merged_gguf"],
        parity_texts, prompts=PROMPTS, max_tokens=MAX_TOKENS,
    )  # fmt: skip
    assert not parity.passed and parity.greedy_same < len(PROMPTS)


def test_one_base_hot_swaps_two_adapters(
    llama_dir: Path, base_f16: Path, two_adapters: dict
) -> None:
    """Load the base once, both adapters once; each answers as its own merged model does."""
    ids = prompt_ids(llama_dir)
    expected = {a: merged_greedy(s["merged_gguf"], ids) for a, s in two_adapters.items()}
    plain = merged_greedy(base_f16, ids)
    assert expected["support"] != expected["coder"]  # two different agents

    runner = BaseWithAdapters(base_f16, n_ctx=128)
    try:
        for agent, files in two_adapters.items():
            runner.load(agent, files["adapter_gguf"])
        answers = []
        for agent in ("support", "coder", "support", None, "coder"):
            runner.use(agent)
            got = [runner.greedy_ids(p, MAX_TOKENS) for p in ids]
            answers.append(got)
            assert got == (expected[agent] if agent else plain), agent
        # Logits too, not only the argmax: the swap leaves no state of the other adapter.
        runner.use("coder")
        swapped = runner.logits(ids[0])
    finally:
        runner.close()
    direct = LlamaCppModel(two_adapters["coder"]["merged_gguf"], n_ctx=128)
    try:
        reference = direct.logits(ids[0])
    finally:
        direct.close()
    assert np.abs(swapped - reference).max() < 0.05 * np.abs(reference).max()
    assert answers[0] == answers[2]


def test_converter_refuses_what_llama_cpp_cannot_apply(llama_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(llama_dir, tmp_path / "dora", seed=3)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(AdapterConversionError, match="DoRA"):
        convert_lora_to_gguf(adapter, llama_dir, tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="Q4_0"):
        convert_lora_to_gguf(adapter, llama_dir, tmp_path / "x.gguf", "Q4_0")


@pytest.mark.slow  # 1-3 min each: Llama-3.2's 128k vocabulary makes every GGUF large
@pytest.mark.parametrize("student", ["tiny-phi-3-mini", "tiny-llama-3.2-1b"])
def test_seed_architectures_pass_adapter_parity(
    student: str, student_dirs: dict, tmp_path: Path, parity_texts: list[str]
) -> None:
    """Phi-3's fused qkv/gate_up and Llama-3.2's permuted q/k: the converter maps both."""
    base_dir = student_dirs[student]
    one = adapter_set(base_dir, tmp_path, seed=5)
    base = write_gguf(base_dir, tmp_path / "base-F16.gguf", "F16").path
    parity = check_adapter_parity(
        one["merged_dir"], base, one["adapter_gguf"], one["merged_gguf"], parity_texts,
        prompts=PROMPTS[:3], max_tokens=8,
    )  # fmt: skip
    assert parity.passed and parity.greedy_same == 3, parity.reason


def test_computed_adapter_bytes_match_the_converter(two_adapters: dict, llama_dir: Path) -> None:
    """bench/adapter_bytes.py computes the seed students' adapters with this formula."""
    from tasks.models.lora_size import RealShape, lora_gguf_bytes

    config = json.loads((llama_dir / "config.json").read_text())
    heads = config["num_attention_heads"]
    shape = RealShape("tiny", config["hidden_size"], config["intermediate_size"],
                      config["num_hidden_layers"], heads, config["num_key_value_heads"],
                      config["hidden_size"] // heads, fused=False)  # fmt: skip
    written = two_adapters["support"]["adapter_gguf"].stat().st_size
    computed = lora_gguf_bytes(shape, 8, "F16")
    assert 0 < written - computed < 16_384  # the difference is the GGUF header


def test_the_phone_ladder_needs_the_adapter_path_too(
    llama_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    """A rung counts for phones only when base + adapter passes as well; when none does, the
    first merged file that passes ships alone and the reason names every rung."""
    from tasks.export.pipeline import export_for_phones

    # A real DoRA adapter: PEFT merges it, llama.cpp's converter refuses it, so no rung
    # can offer base + adapter.
    adapter = make_adapter(llama_dir, tmp_path / "dora", seed=1, use_dora=True)
    report = export_for_phones(
        llama_dir, adapter, tmp_path / "export", ("PHONE",), parity_texts, name="tiny",
        adapter_gguf=True, base_revision="r1", base_cache=tmp_path / "bases",
    )  # fmt: skip
    assert report.phone_file is not None and not report.delta_files
    assert report.phone_reason.startswith(f"{report.phone_file}, merged file only")
    tried = report.adapter_reason.removeprefix("no rung passes base + adapter: ").split("; ")
    # Every rung was tried for the adapter path: the merged-passing ones say DoRA stopped them.
    assert [t.split(":")[0] for t in tried] == ["Q4_K_M", "Q4_1", "Q8_0"]
    merged_ok = [t for t in tried if "merged passes, base + adapter does not" in t]
    assert merged_ok and all("DoRA" in t for t in merged_ok)
    assert [f.quantization for f in report.files] == [report.phone_file]


def test_the_phone_ladder_offers_the_delta_at_the_rung_phones_get(
    llama_dir: Path, tmp_path: Path, parity_texts: list[str]
) -> None:
    from tasks.export.pipeline import export_for_phones

    adapter = make_adapter(llama_dir, tmp_path / "lora", seed=1)
    report = export_for_phones(
        llama_dir, adapter, tmp_path / "export", ("PHONE",), parity_texts, name="tiny",
        adapter_gguf=True, base_revision="r1", base_cache=tmp_path / "bases",
    )  # fmt: skip
    base = next(f for f in report.delta_files if f.role == "base")
    assert base.quantization == report.phone_file
    assert report.adapter_reason == f"base {report.phone_file} + adapter pass parity"
