"""Prefect task wrappers for the export stage (the core modules stay free of prefect)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import task

from tasks.export.pipeline import export_for_phones


@task(name="export-for-phones", retries=0)
def export_for_phones_task(
    base_dir: str,
    adapter_dir: str | None,
    out_dir: str,
    quantizations: Sequence[str] = ("Q8_0", "Q4_0"),
    parity_texts: Sequence[str] | None = None,
    tolerances: Mapping[str, float] | None = None,
    name: str = "model",
) -> dict[str, Any]:
    """Compute task (no retries): merge, write GGUF files, check parity; returns the report dict."""
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
