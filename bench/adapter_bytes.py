"""Weekly update bytes ÷ full file bytes per student: the GGUF adapter vs the phone file.

Baseline (same run): the full file a phone downloads today every week. SmolLM2 (the embedded
pruned student) is measured: its base written as Q4_1 by llama.cpp (its phone file: Q4_K_M
fails parity on 576-wide tensors, see bench/export.py), a real PEFT LoRA on every projection
at the preset's rank and at rank 16, converted by llama.cpp's convert_lora_to_gguf.py, and
llama.cpp loading the adapter onto the base. The seed students are computed from their real
configs (tasks/models/lora_size.py) at their presets' ranks against their public Q4_K_M
sizes; the SmolLM2 rows show the computed figure beside the measured one. Goal: ratio ≤ 0.05.

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
    PHONE_FILE_BYTES,
    SMOLLM2_135M,
    TINYLLAMA,
    UPDATE_BUDGET,
    lora_gguf_bytes,
    lora_params,
)
from tasks.models.presets import get_preset, preset_names  # noqa: E402

GOAL = UPDATE_BUDGET
STUDENT = "smollm2-pruned-student"


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def computed_rows() -> list[dict[str, object]]:
    """The seed students at their presets' ranks, from config.json and public file sizes."""
    shapes = {s.hub_id: s for s in (LLAMA_32_1B, PHI_3_MINI, TINYLLAMA)}
    rows = []
    for name in preset_names("student"):
        preset = get_preset(name)
        if preset.hub_id not in shapes or preset.source != "hub":
            continue
        shape, full = shapes[preset.hub_id], PHONE_FILE_BYTES[preset.hub_id]
        for adapter_type in ("F16", "Q8_0"):
            update = lora_gguf_bytes(shape, preset.lora_r, adapter_type)
            rows.append({
                "student": shape.hub_id, "how": "computed from config.json",
                "rank": preset.lora_r, "lora_params": lora_params(shape, preset.lora_r),
                "adapter_type": adapter_type, "update_bytes": update, "full_bytes": int(full),
                "ratio": update / full,
            })  # fmt: skip
    return rows


def measured_rows(out_dir: Path) -> list[dict[str, object]]:
    """The pruned SmolLM2 student: real base GGUF, real adapter GGUF, loaded by llama.cpp."""
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from tasks.export.adapter_gguf import convert_lora_to_gguf
    from tasks.export.adapter_runtime import BaseWithAdapters
    from tasks.export.gguf_export import preset_metadata, write_gguf
    from tasks.models.adapters import lora_config
    from tasks.models.load import materialize_preset

    preset = get_preset(STUDENT)
    base_dir = materialize_preset(STUDENT)
    full = write_gguf(base_dir, out_dir / "full-Q4_1.gguf", "Q4_1", preset_metadata(STUDENT))
    layers = AutoConfig.from_pretrained(base_dir).num_hidden_layers
    rows = []
    for rank in sorted({preset.lora_r, 16}):
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        # init_lora_weights=False: non-zero B, so the adapter changes outputs like a trained one.
        config = lora_config(preset, r=rank, lora_alpha=2 * rank, init_lora_weights=False)
        peft = get_peft_model(model, config)
        peft.save_pretrained(str(out_dir / f"adapter-r{rank}"))
        for adapter_type in ("F16", "Q8_0"):
            adapter = convert_lora_to_gguf(
                out_dir / f"adapter-r{rank}", base_dir,
                out_dir / f"adapter-r{rank}-{adapter_type}.gguf", adapter_type,
            )  # fmt: skip
            runner = BaseWithAdapters(full.path, n_ctx=64)  # llama.cpp accepts it on this base
            try:
                runner.load("weekly", adapter.file.path)
            finally:
                runner.close()
            rows.append({
                "student": f"{preset.hub_id} ({STUDENT}, {layers} layers)",
                "how": "measured" + (" (preset rank)" if rank == preset.lora_r else ""),
                "rank": rank,
                "lora_params": sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n),
                "computed_bytes": lora_gguf_bytes(SMOLLM2_135M, rank, adapter_type, layers=layers),
                "adapter_type": adapter_type, "update_bytes": adapter.file.size,
                "full_bytes": full.size, "ratio": adapter.file.size / full.size,
            })  # fmt: skip
    return rows


def table(rows: list[dict[str, object]]) -> str:
    head = "| student | how | adapter | LoRA params | update bytes | phone file bytes | ratio |"
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
    rows = measured + computed_rows()
    for row in rows:
        emit(**row, goal=GOAL)
    print(table(rows))


if __name__ == "__main__":
    main()
