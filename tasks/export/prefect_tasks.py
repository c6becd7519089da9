"""Prefect task wrappers for the export stage (the core modules stay free of prefect).

All are compute tasks: no retries (a failed export should fail loudly). Each returns small
JSON-friendly values (paths as strings, dicts), never models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task

from tasks.export.gguf_export import write_gguf
from tasks.export.llama_cpp import Skipped, quantize_q4_k_m
from tasks.export.merge import merge_adapter
from tasks.export.parity import check_parity
from tasks.export.pipeline import DEFAULT_QUANTIZATIONS, export_for_phones


def _file_dict(result: Any) -> dict[str, Any]:
    out = asdict(result)
    if "path" in out:
        out["path"] = str(out["path"])
    return out


@task(name="merge-adapter", retries=0)
def merge_adapter_task(base_dir: str, adapter_dir: str | None, out_dir: str) -> str:
    """Merged HF directory, as a string path."""
    return str(
        merge_adapter(Path(base_dir), Path(adapter_dir) if adapter_dir else None, Path(out_dir))
    )


@task(name="write-gguf", retries=0)
def write_gguf_task(hf_dir: str, out_path: str, quantization: str) -> dict[str, Any]:
    """GGUFFile as a dict (path, quantization, size, sha256, notes)."""
    return _file_dict(write_gguf(Path(hf_dir), Path(out_path), quantization))


@task(name="quantize-q4-k-m", retries=0)
def quantize_q4_k_m_task(f16_gguf: str, out_path: str) -> dict[str, Any]:
    """GGUFFile as a dict, or {'quantization', 'reason'} when skipped."""
    result = quantize_q4_k_m(Path(f16_gguf), Path(out_path))
    return asdict(result) if isinstance(result, Skipped) else _file_dict(result)


@task(name="check-parity", retries=0)
def check_parity_task(
    hf_dir: str, gguf_path: str, texts: Sequence[str], tolerance: float | None = None
) -> dict[str, Any]:
    """ParityResult as a dict."""
    return asdict(check_parity(Path(hf_dir), Path(gguf_path), texts, tolerance=tolerance))


@task(name="export-for-phones", retries=0)
def export_for_phones_task(
    base_dir: str,
    adapter_dir: str | None,
    out_dir: str,
    quantizations: Sequence[str] = DEFAULT_QUANTIZATIONS,
    parity_texts: Sequence[str] | None = None,
    tolerances: Mapping[str, float] | None = None,
    name: str = "model",
) -> dict[str, Any]:
    """Merge, write GGUF files, check parity; returns ExportReport.to_dict()."""
    report = export_for_phones(
        Path(base_dir),
        Path(adapter_dir) if adapter_dir else None,
        Path(out_dir),
        quantizations,
        parity_texts,
        tolerances,
        name=name,
    )
    return report.to_dict()
