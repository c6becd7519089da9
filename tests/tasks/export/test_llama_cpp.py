"""llama.cpp side: Q4_K_M quantization and generation, skipped with a reason when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.export import Skipped, llama_cpp_missing_reason, quantize_q4_k_m, write_gguf
from tasks.export.llama_cpp import llama_cpp_generate

MISSING = llama_cpp_missing_reason()
needs_llama_cpp = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


@pytest.mark.skipif(MISSING is None, reason="llama_cpp is installed: the quantizer runs instead")
def test_q4_k_m_without_llama_cpp_is_a_reason_not_an_error(tmp_path: Path) -> None:
    result = quantize_q4_k_m(tmp_path / "in-F16.gguf", tmp_path / "out.gguf")
    assert isinstance(result, Skipped) and result.quantization == "Q4_K_M"
    assert "llama-cpp-python" in result.reason
    assert not (tmp_path / "out.gguf").exists()


@needs_llama_cpp
@pytest.mark.parametrize("arch", ["llama", "phi3"])
def test_llama_cpp_loads_our_gguf_and_generates(
    arch: str, model_dirs: dict, tmp_path: Path
) -> None:
    for quant in ("F16", "Q8_0", "Q4_0"):
        path = write_gguf(model_dirs[arch], tmp_path / f"{arch}-{quant}.gguf", quant).path
        n_tokens, _ = llama_cpp_generate(path, "<|im_start|>user\nHello<|im_end|>\n", 4)
        assert n_tokens > 0, quant


@needs_llama_cpp
def test_q4_k_m_from_f16_loads_in_llama_cpp(llama_dir: Path, tmp_path: Path) -> None:
    f16 = write_gguf(llama_dir, tmp_path / "m-F16.gguf", "F16")
    result = quantize_q4_k_m(f16.path, tmp_path / "m-Q4_K_M.gguf")
    assert not isinstance(result, Skipped), result
    assert result.path.is_file() and result.size > 0
    n_tokens, _ = llama_cpp_generate(result.path, "Hello", 4)
    assert n_tokens > 0
