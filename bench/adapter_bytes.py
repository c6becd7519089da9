"""Weekly update bytes ÷ full file bytes per student: the GGUF adapter vs the merged Q4_K_M.

Baseline (same run): the full Q4_K_M file a phone downloads today every week. SmolLM2
(the embedded pruned student) is measured: its base written as Q4_K_M by llama.cpp, a real
rank-16 PEFT LoRA on every projection converted by llama.cpp's convert_lora_to_gguf.py, and
llama.cpp loading the adapter onto the base. The seed students are computed from their real
configs (tasks/models/lora_size.py) against their public Q4_K_M sizes; the SmolLM2 rows show
the computed figure beside the measured one. Goal: ratio ≤ 0.05.

    python bench/adapter_bytes.py [--skip-measure]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.models.lora_size import (  # noqa: E402
    LLAMA_32_1B,
    PHI_3_MINI,
    SMOLLM2_135M,
    lora_gguf_bytes,
    lora_params,
)

GOAL = 0.05
RANK = 16
# Full-file baselines for the seed students: the public Q4_K_M files' sizes (issue 14: about
# 0.8 GB for Llama-3.2-1B-Instruct, 2.3 GB for Phi-3-mini-4k-instruct).
FULL_Q4_K_M = {LLAMA_32_1B.hub_id: 0.8e9, PHI_3_MINI.hub_id: 2.3e9}


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def computed_rows(smollm2_full: int | None = None) -> list[dict[str, object]]:
    """The seed students at r=16; with the measured SmolLM2 file, the rank it needs."""
    rows = []
    for shape in (LLAMA_32_1B, PHI_3_MINI):
        full = FULL_Q4_K_M[shape.hub_id]
        for adapter_type in ("F16", "Q8_0"):
            update = lora_gguf_bytes(shape, RANK, adapter_type)
            rows.append({
                "student": shape.hub_id, "how": "computed from config.json", "rank": RANK,
                "lora_params": lora_params(shape, RANK), "adapter_type": adapter_type,
                "update_bytes": update, "full_bytes": int(full), "ratio": update / full,
            })  # fmt: skip
    if smollm2_full:  # the pruned student (24 layers) at r=8: under the goal?
        update = lora_gguf_bytes(SMOLLM2_135M, 8, "F16", layers=24)
        rows.append({
            "student": f"{SMOLLM2_135M.hub_id} (smollm2-pruned-student, 24 layers)",
            "how": "computed, measured full file", "rank": 8, "adapter_type": "F16",
            "lora_params": lora_params(SMOLLM2_135M, 8) * 24 // 30, "update_bytes": update,
            "full_bytes": smollm2_full, "ratio": update / smollm2_full,
        })  # fmt: skip
    return rows


def measured_rows(out_dir: Path) -> list[dict[str, object]]:
    """The pruned SmolLM2 student: real base GGUF, real adapter GGUF, loaded by llama.cpp."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from tasks.export.adapter_gguf import convert_lora_to_gguf
    from tasks.export.adapter_runtime import BaseWithAdapters
    from tasks.export.gguf_export import preset_metadata, write_gguf
    from tasks.models.adapters import lora_config
    from tasks.models.load import materialize_preset
    from tasks.models.presets import get_preset

    name = "smollm2-pruned-student"
    preset = get_preset(name)
    base_dir = materialize_preset(name)
    full = write_gguf(base_dir, out_dir / "full-Q4_K_M.gguf", "Q4_K_M", preset_metadata(name))
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    # init_lora_weights=False: non-zero B, so the adapter changes outputs like a trained one.
    peft = get_peft_model(model, lora_config(preset, r=RANK, init_lora_weights=False))
    peft.save_pretrained(str(out_dir / "adapter"))
    layers = model.config.num_hidden_layers
    rows = []
    for adapter_type in ("F16", "Q8_0"):
        adapter = convert_lora_to_gguf(
            out_dir / "adapter", base_dir, out_dir / f"adapter-{adapter_type}.gguf", adapter_type
        )
        runner = BaseWithAdapters(full.path, n_ctx=64)  # llama.cpp accepts it on this base
        try:
            runner.load("weekly", adapter.file.path)
        finally:
            runner.close()
        rows.append({
            "student": f"{preset.hub_id} ({name}, {layers} layers)", "how": "measured",
            "rank": RANK,
            "lora_params": sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n),
            "computed_bytes": lora_gguf_bytes(SMOLLM2_135M, RANK, adapter_type, layers=layers),
            "adapter_type": adapter_type, "update_bytes": adapter.file.size,
            "full_bytes": full.size, "ratio": adapter.file.size / full.size,
        })  # fmt: skip
    return rows


def table(rows: list[dict[str, object]]) -> str:
    head = "| student | how | adapter | LoRA params | update bytes | full Q4_K_M bytes | ratio |"
    lines = [head, "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ok = "✓" if float(r["ratio"]) <= GOAL else "✗"  # type: ignore[arg-type]
        lines.append(
            f"| {r['student']} | {r['how']} | r={r['rank']} {r['adapter_type']} | "
            f"{r['lora_params']:,} | {r['update_bytes']:,} | {r['full_bytes']:,} | "
            f"{float(r['ratio']):.3f} {ok} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-measure", action="store_true", help="computed rows only")
    args = parser.parse_args()
    measured: list[dict[str, object]] = []
    if not args.skip_measure:
        with tempfile.TemporaryDirectory(prefix="adapter-bytes-") as tmp:
            measured = measured_rows(Path(tmp))
    full = int(measured[0]["full_bytes"]) if measured else None  # type: ignore[call-overload]
    rows = measured + computed_rows(full)
    for row in rows:
        emit(**row, goal=GOAL)
    print(table(rows))


if __name__ == "__main__":
    main()
