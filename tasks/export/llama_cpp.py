"""llama.cpp via llama-cpp-python, when installed: Q4_K_M quantization and a smoke test."""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.export.gguf_export import GGUFFile, describe

# llama.cpp's enum llama_ftype value for Q4_K_M (stable since 2023).
LLAMA_FTYPE_MOSTLY_Q4_K_M = 15


@dataclass(frozen=True)
class Skipped:
    """A file that was not produced, and why (a result, not an exception)."""

    quantization: str
    reason: str


def llama_cpp_missing_reason() -> str | None:
    """None when llama_cpp imports; otherwise a sentence saying why it cannot be used."""
    if importlib.util.find_spec("llama_cpp") is None:
        return (
            "llama-cpp-python is not installed (pip install llama-cpp-python; it builds "
            "llama.cpp from source, ~10 min on 2 cores)"
        )
    try:
        importlib.import_module("llama_cpp")
    except Exception as exc:  # a broken native build raises all sorts of errors
        return f"llama_cpp is installed but does not import: {exc}"
    return None


def _llama_cpp() -> Any:
    return importlib.import_module("llama_cpp")


def quantize_q4_k_m(f16_gguf: Path, out_path: Path) -> GGUFFile | Skipped:
    """Requantize an F16 GGUF to Q4_K_M with llama.cpp's quantizer, or say why it was skipped."""
    reason = llama_cpp_missing_reason()
    if reason is not None:
        return Skipped("Q4_K_M", reason)
    f16_gguf, out_path = Path(f16_gguf), Path(out_path)
    if not f16_gguf.is_file():
        raise FileNotFoundError(f"F16 GGUF {f16_gguf} does not exist")
    lib = _llama_cpp()
    params = lib.llama_model_quantize_default_params()
    params.ftype = getattr(lib, "LLAMA_FTYPE_MOSTLY_Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M)
    params.nthread = os.cpu_count() or 1
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    status = lib.llama_model_quantize(
        str(f16_gguf).encode(), str(tmp_path).encode(), ctypes.byref(params)
    )
    if status != 0:
        tmp_path.unlink(missing_ok=True)
        return Skipped("Q4_K_M", f"llama_model_quantize failed with status {status}")
    os.replace(tmp_path, out_path)
    return describe(out_path, "Q4_K_M")


def llama_cpp_generate(gguf_path: Path, prompt: str, max_tokens: int = 8) -> tuple[int, str]:
    """Load a GGUF in llama.cpp and greedily generate a few tokens: (tokens generated, text)."""
    reason = llama_cpp_missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    llm = _llama_cpp().Llama(model_path=str(gguf_path), n_ctx=256, verbose=False, seed=0)
    out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
    return int(out["usage"]["completion_tokens"]), out["choices"][0]["text"]
