"""Export for phones: merge the LoRA adapter, write GGUF, quantize and check parity."""

from tasks.export.gguf_export import GGUFFile, write_gguf
from tasks.export.llama_cpp import Skipped, llama_cpp_missing_reason, quantize_q4_k_m
from tasks.export.merge import merge_adapter
from tasks.export.parity import DEFAULT_TOLERANCES, ParityResult, check_parity
from tasks.export.pipeline import ExportReport, export_for_phones

__all__ = [
    "DEFAULT_TOLERANCES",
    "ExportReport",
    "GGUFFile",
    "ParityResult",
    "Skipped",
    "check_parity",
    "export_for_phones",
    "llama_cpp_missing_reason",
    "merge_adapter",
    "quantize_q4_k_m",
    "write_gguf",
]
