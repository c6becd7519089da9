"""The export stage's Prefect tasks: one line each, names and retries only (see README).

All are compute tasks: no retries (a failed export should fail loudly).
"""

from __future__ import annotations

from prefect import task

from tasks.export.gguf_export import write_gguf
from tasks.export.llama_cpp import quantize_q4_k_m
from tasks.export.merge import merge_adapter
from tasks.export.parity import check_parity
from tasks.export.pipeline import export_for_phones

merge_adapter_task = task(name="merge-adapter", retries=0)(merge_adapter)
write_gguf_task = task(name="write-gguf", retries=0)(write_gguf)
quantize_q4_k_m_task = task(name="quantize-q4-k-m", retries=0)(quantize_q4_k_m)
check_parity_task = task(name="check-parity", retries=0)(check_parity)
export_for_phones_task = task(name="export-for-phones", retries=0)(export_for_phones)
