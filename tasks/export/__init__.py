"""Export for phones: merge the LoRA adapter, write GGUF with llama.cpp, check parity there.

The names below load on first use (PEP 562), so `python -m tasks.export.llama_cpp_build`
and other light entry points under this package do not import torch, transformers and peft.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.export.convert import GGUFMetadata
    from tasks.export.files import GGUFFile
    from tasks.export.gguf_export import base_metadata, write_gguf, write_gguf_files
    from tasks.export.llama_cpp import (
        Skipped,
        llama_cpp_missing_reason,
        quantize,
        quantize_q4_k_m,
    )
    from tasks.export.merge import merge_adapter
    from tasks.export.parity import DEFAULT_TOLERANCES, ParityResult, check_parity
    from tasks.export.pipeline import PHONE, export_for_phones
    from tasks.export.report import ExportReport

_WHERE = {
    "GGUFMetadata": "convert",
    "GGUFFile": "files",
    "base_metadata": "gguf_export",
    "write_gguf": "gguf_export",
    "write_gguf_files": "gguf_export",
    "Skipped": "llama_cpp",
    "llama_cpp_missing_reason": "llama_cpp",
    "quantize": "llama_cpp",
    "quantize_q4_k_m": "llama_cpp",
    "merge_adapter": "merge",
    "DEFAULT_TOLERANCES": "parity",
    "ParityResult": "parity",
    "check_parity": "parity",
    "PHONE": "pipeline",
    "export_for_phones": "pipeline",
    "ExportReport": "report",
}
__all__ = [
    "DEFAULT_TOLERANCES",
    "PHONE",
    "ExportReport",
    "GGUFFile",
    "GGUFMetadata",
    "ParityResult",
    "Skipped",
    "base_metadata",
    "check_parity",
    "export_for_phones",
    "llama_cpp_missing_reason",
    "merge_adapter",
    "quantize",
    "quantize_q4_k_m",
    "write_gguf",
    "write_gguf_files",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"tasks.export.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tasks.export' has no attribute {name!r}")
