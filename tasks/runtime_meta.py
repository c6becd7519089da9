"""What operators size devices by: memory to run base + adapters per quantization, variants,
the PEFT config. Plain numbers from config.json and the safetensors headers (no weights read).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Average bits per weight of llama.cpp's file types (block scales included; Q4_K_M mixes
# Q4_K with Q6_K for some matrices, about 4.85 on Llama-class models in llama.cpp's table).
BITS_PER_WEIGHT = {"F32": 32.0, "F16": 16.0, "Q8_0": 8.5, "Q4_K_M": 4.85, "Q4_0": 4.5}
DEFAULT_N_CTX = 2048
# llama.cpp's compute buffer on CPU for a small model at this context: a rough fixed share.
COMPUTE_OVERHEAD = 0.10


@dataclass(frozen=True)
class ModelShape:
    """The numbers memory depends on: parameters, layers and the KV cache's width."""

    n_params: int
    n_layers: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int

    def kv_cache_bytes(self, n_ctx: int, bytes_per_value: int = 2) -> int:
        """K and V for every layer at `n_ctx` positions (F16 cache, llama.cpp's default)."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * n_ctx * bytes_per_value


def _safetensors_params(hf_dir: Path) -> int:
    """Parameters counted from the safetensors headers (8-byte length + JSON), no tensor read."""
    total = 0
    for path in sorted(Path(hf_dir).glob("*.safetensors")):
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= int(dim)
                total += count
    return total


def model_shape(hf_dir: Path) -> ModelShape:
    """The shape of the HF model in `hf_dir`."""
    config = json.loads((Path(hf_dir) / "config.json").read_text(encoding="utf-8"))
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
    return ModelShape(
        n_params=_safetensors_params(hf_dir),
        n_layers=int(config["num_hidden_layers"]),
        n_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        hidden_size=int(config["hidden_size"]),
    )


def runtime_metadata(
    shape: ModelShape,
    files: Sequence[Mapping[str, Any]],
    peft: Mapping[str, Any] | None = None,
    n_ctx: int = DEFAULT_N_CTX,
) -> dict[str, Any]:
    """{"memory": per quantization, "variants": files by role, "peft": ..., "shape": ...}.

    Memory = weights (the written file's size where one exists, else parameters × bits per
    weight) + the largest adapter + the KV cache at `n_ctx` + a compute-buffer share.
    """
    written = {
        str(f.get("quantization")): int(f["size"])
        for f in files
        if (f.get("role") or "merged") in ("base", "merged") and f.get("size")
    }
    adapters = [int(f["size"]) for f in files if f.get("role") == "adapter"]
    adapter = max(adapters, default=0)
    kv = shape.kv_cache_bytes(n_ctx)
    memory = {}
    for quant, bits in BITS_PER_WEIGHT.items():
        if quant == "F32":
            continue
        weights = written.get(quant) or int(shape.n_params * bits / 8)
        total = int((weights + adapter + kv) * (1 + COMPUTE_OVERHEAD))
        memory[quant] = {
            "weights_bytes": weights,
            "adapter_bytes": adapter,
            "kv_cache_bytes": kv,
            "total_bytes": total,
            "weights_measured": quant in written,
        }
    variants = [
        {"role": f.get("role") or "merged", "quantization": f.get("quantization"),
         "size": f.get("size"), "name": f.get("name")}
        for f in files
    ]  # fmt: skip
    out: dict[str, Any] = {
        "n_ctx": n_ctx,
        "shape": asdict(shape),
        "memory": memory,
        "variants": variants,
    }
    if peft:
        keep = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "bias")
        out["peft"] = {k: peft[k] for k in keep if k in peft}
    return out


def runtime_from_files(files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """runtime_metadata from a version's file entries: the base's `meta.shape` and the
    adapter's LoRA facts; {} for a version without them (merged file only)."""
    shape = next(
        (
            f["meta"]["shape"]
            for f in files
            if isinstance(f.get("meta"), dict) and "shape" in f["meta"]
        ),
        None,
    )
    if shape is None:
        return {}
    adapter = next((f.get("meta") or {} for f in files if f.get("role") == "adapter"), {})
    peft = (
        {
            "peft_type": "LORA",
            "r": adapter.get("lora_rank"),
            "lora_alpha": adapter.get("lora_alpha"),
            "target_modules": adapter.get("target_modules"),
        }
        if adapter
        else None
    )
    return runtime_metadata(ModelShape(**shape), files, peft)
