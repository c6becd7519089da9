"""Export for phones: merge the LoRA adapter, write GGUF with llama.cpp, check parity there."""

from tasks.export.convert import GGUFMetadata
from tasks.export.files import GGUFFile
from tasks.export.gguf_export import base_metadata, write_gguf, write_gguf_files
from tasks.export.llama_cpp import Skipped, llama_cpp_missing_reason, quantize, quantize_q4_k_m
from tasks.export.merge import merge_adapter
from tasks.export.parity import DEFAULT_TOLERANCES, ParityResult, check_parity
from tasks.export.pipeline import PHONE, export_for_phones
from tasks.export.report import ExportReport

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
