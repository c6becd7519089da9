"""How many parameters a LoRA adapter has on a given model shape, and its GGUF bytes.

The real students' shapes are those of their public config.json files (the repos are not
reachable from CI, so the numbers are written here once, with the field names they come from).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.models.presets import LLAMA_LORA_TARGETS, PHI3_LORA_TARGETS


@dataclass(frozen=True)
class RealShape:
    """The config.json fields a LoRA's size depends on."""

    hub_id: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    fused: bool  # Phi-3: qkv_proj and gate_up_proj are single matrices

    def projections(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each projection LoRA can target, per layer."""
        h, i = self.hidden_size, self.intermediate_size
        q, kv = self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        if self.fused:
            return {"qkv_proj": (h, q + 2 * kv), "o_proj": (q, h),
                    "gate_up_proj": (h, 2 * i), "down_proj": (i, h)}  # fmt: skip
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    def default_targets(self) -> tuple[str, ...]:
        """Every projection: what the presets target."""
        return PHI3_LORA_TARGETS if self.fused else LLAMA_LORA_TARGETS


# From each repo's config.json.
LLAMA_32_1B = RealShape("meta-llama/Llama-3.2-1B-Instruct", 2048, 8192, 16, 32, 8, 64, False)
PHI_3_MINI = RealShape("microsoft/Phi-3-mini-4k-instruct", 3072, 8192, 32, 32, 32, 96, True)
TINYLLAMA = RealShape("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 2048, 5632, 22, 32, 4, 64, False)
SMOLLM2_135M = RealShape("HuggingFaceTB/SmolLM2-135M-Instruct", 576, 1536, 30, 9, 3, 64, False)

# A weekly update (the version's adapter) may be at most this share of the phone file.
UPDATE_BUDGET = 0.05
# The phone files the budget is taken of: the public Q4_K_M files of the seed students
# (issue 14: about 0.8 GB and 2.3 GB; TinyLlama's 0.67 GB), and the pruned SmolLM2
# student's Q4_1 file as llama.cpp writes it (measured by test_smollm2_slow.py).
PHONE_FILE_BYTES = {
    "meta-llama/Llama-3.2-1B-Instruct": 0.8e9,
    "microsoft/Phi-3-mini-4k-instruct": 2.3e9,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 0.67e9,
    "smollm2-pruned-student": 85_060_768,
}

# GGUF bytes per stored value of a LoRA factor (Q8_0: 34 bytes per 32 values).
BYTES_PER_VALUE = {"F32": 4.0, "F16": 2.0, "Q8_0": 34 / 32}


def lora_params(shape: RealShape, rank: int, targets: tuple[str, ...] | None = None) -> int:
    """Parameters of a rank-`rank` LoRA on `targets` (all projections by default)."""
    projections = shape.projections()
    chosen = targets or shape.default_targets()
    unknown = set(chosen) - set(projections)
    if unknown:
        raise ValueError(f"{shape.hub_id} has no projections {sorted(unknown)}")
    per_layer = sum(rank * (projections[t][0] + projections[t][1]) for t in chosen)
    return per_layer * shape.num_hidden_layers


def lora_gguf_bytes(shape: RealShape, rank: int, adapter_type: str = "F16", layers: int = 0) -> int:
    """The tensor bytes of the GGUF adapter (the header adds a few KB; measured beside).

    Q8_0 packs rows in blocks of 32 values: lora_a's rows (length in_features) are packed,
    lora_b's rows have length `rank`, so below 32 the converter keeps them in F16.
    """
    if layers:
        shape = RealShape(**{**shape.__dict__, "num_hidden_layers": layers})
    per_value = BYTES_PER_VALUE[adapter_type]
    b_value = per_value if adapter_type != "Q8_0" or rank % 32 == 0 else BYTES_PER_VALUE["F16"]
    projections = shape.projections()
    total = 0.0
    for target in shape.default_targets():
        n_in, n_out = projections[target]
        total += rank * n_in * per_value + rank * n_out * b_value
    return int(total * shape.num_hidden_layers)
