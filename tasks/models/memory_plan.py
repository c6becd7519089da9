"""Will a distillation fit the device? An estimate made before any model loads.

The teacher and the student never share the device: the teacher's signals are computed
and cached first (tasks/distill/signals.py), its weights freed, then the student trains.
So the peak is the larger of two phases:

- teacher signals: teacher weights + one forward pass of `teacher_batch_size` records
  (its logits in the compute format, then an fp32 copy and its log-softmax for the top-k);
- training: student weights + LoRA weights, gradients and AdamW state (fp32) +
  activations of `per_device_batch_size` records of `max_length` tokens (every layer's,
  or one layer's plus the layer inputs under gradient checkpointing) + the logits, their
  fp32 softmax and its gradient.

Weights count 2 bytes a parameter in bf16/fp16, 4 in fp32, and about 0.52 in NF4 (4 bits
plus the double-quantized scales) for the linear layers, whose embeddings stay 16-bit.
Activations use the usual per-token, per-layer count for a transformer with fused
attention (no sequence-squared term). It is an estimate: 10 % and the CUDA context are
added as margin. Its parameter counts are tested against built models and PEFT's own LoRA;
its activation figures have not yet been checked against a measured peak on a GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

GIB = 1024**3
CUDA_CONTEXT = 0.6 * GIB  # the CUDA context, cuBLAS workspaces and allocator slack
MARGIN = 1.10
NF4_BYTES = 0.52  # 4 bits + double-quantized absmax scales (bitsandbytes, blocksize 64)


class MemoryPlanError(RuntimeError):
    """A distillation cannot fit the device at any batch: the numbers say why."""


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on: widths, depth, vocabulary, heads."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads

    def module_sizes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear module of one decoder layer, by PEFT name."""
        h, i, hd = self.hidden, self.intermediate, self.head_dim
        q, kv = self.heads * hd, self.kv_heads * hd
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "qkv_proj": (h, q + 2 * kv),  # Phi-3's fused projections
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "gate_up_proj": (h, 2 * i),
            "down_proj": (i, h),
        }

    @property
    def linear_params(self) -> int:
        """Parameters of the decoder layers' linear modules (what NF4 quantizes)."""
        sizes = self.module_sizes()
        per_layer = sum(a * b for n, (a, b) in sizes.items() if n in _UNFUSED)
        return self.layers * per_layer

    @property
    def embedding_params(self) -> int:
        """Input embeddings and the output head (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def params(self) -> int:
        """All parameters (norms included)."""
        norms = (2 * self.layers + 1) * self.hidden
        return self.linear_params + self.embedding_params + norms

    def lora_params(self, targets: tuple[str, ...], rank: int) -> int:
        """Parameters of a rank-`rank` LoRA on these modules of every layer."""
        sizes = self.module_sizes()
        return self.layers * sum(rank * sum(sizes[t]) for t in targets if t in sizes)


_UNFUSED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# The seed models' published configurations (config.json on the Hub), so a plan needs no
# download. Parameter totals follow from them: 7.25 B, 7.62 B, 8.03 B, 3.82 B, 1.24 B, 1.10 B.
HUB_SHAPES: dict[str, ModelShape] = {
    "mistralai/Mistral-7B-Instruct-v0.3": ModelShape(4096, 32, 14336, 32, 8, 32768),
    "Qwen/Qwen2.5-7B-Instruct": ModelShape(3584, 28, 18944, 28, 4, 152064),
    "meta-llama/Llama-3.1-8B-Instruct": ModelShape(4096, 32, 14336, 32, 8, 128256),
    "microsoft/Phi-3-mini-4k-instruct": ModelShape(3072, 32, 8192, 32, 32, 32064),
    "meta-llama/Llama-3.2-1B-Instruct": ModelShape(2048, 16, 8192, 32, 8, 128256, True),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": ModelShape(2048, 22, 5632, 32, 4, 32000),
}


def shape_from_config(config: dict[str, object]) -> ModelShape:
    """The shape a transformers config.json describes."""

    def get(name: str, default: object = None) -> int:
        value = config.get(name, default)
        if value is None:
            raise ValueError(f"config.json has no {name}")
        return int(value)  # type: ignore[call-overload]

    heads = get("num_attention_heads")
    return ModelShape(
        hidden=get("hidden_size"),
        layers=get("num_hidden_layers"),
        intermediate=get("intermediate_size"),
        heads=heads,
        kv_heads=get("num_key_value_heads", heads),
        vocab=get("vocab_size"),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def preset_shape(preset_name: str) -> ModelShape:
    """A preset's shape: the published one for Hub models and shape presets (at their
    depth), the built config for other local ones."""
    from tasks.models.presets import get_preset

    preset = get_preset(preset_name)
    if preset.source == "shape":  # the real model's, at the preset's depth; nothing is built
        from tasks.models.shape import shape_of

        return shape_of(preset)
    if not preset.is_local and preset.hub_id in HUB_SHAPES:
        return HUB_SHAPES[preset.hub_id]
    if not preset.is_local:
        raise ValueError(f"no known shape for {preset.hub_id}; add its config to HUB_SHAPES")
    from tasks.models.load import materialize_preset

    config = json.loads((Path(materialize_preset(preset_name)) / "config.json").read_text())
    return shape_from_config(config)


@dataclass(frozen=True)
class Workload:
    """What one distillation asks of the device."""

    teacher: ModelShape
    student: ModelShape
    lora_targets: tuple[str, ...]
    lora_rank: int
    batch: int  # per-device training batch
    grad_accum: int
    max_length: int
    teacher_batch: int
    weight_bytes: float  # 2 (bf16/fp16) or 4 (fp32)
    teacher_4bit: bool
    student_4bit: bool
    gradient_checkpointing: bool
    teacher_runs_here: bool = True  # False: a remote teacher, or every signal cached


@dataclass(frozen=True)
class Estimate:
    """Bytes per component, the phase peak, and whether it fits `capacity`."""

    parts: dict[str, float]
    teacher_phase: float
    training_phase: float
    capacity: float
    workload: Workload

    @property
    def peak(self) -> float:
        """The larger phase, with the margin and the context."""
        return max(self.teacher_phase, self.training_phase) * MARGIN + self._context

    @property
    def _context(self) -> float:
        return CUDA_CONTEXT if self.workload.weight_bytes < 4 else 0.0

    @property
    def fits(self) -> bool:
        """True when the peak is within the device's memory."""
        return self.peak <= self.capacity

    def table(self) -> str:
        """The components in GiB, one a line, then the peak against the capacity."""
        lines = [f"  {name:<30} {size / GIB:8.2f} GiB" for name, size in self.parts.items()]
        lines.append(f"  {'teacher phase':<30} {self.teacher_phase / GIB:8.2f} GiB")
        lines.append(f"  {'training phase':<30} {self.training_phase / GIB:8.2f} GiB")
        verdict = "fits" if self.fits else "does not fit"
        lines.append(
            f"  peak (+10 %, context) {self.peak / GIB:.2f} GiB of {self.capacity / GIB:.2f} GiB:"
            f" {verdict}"
        )
        return "\n".join(lines)


def _weights(shape: ModelShape, four_bit: bool, weight_bytes: float) -> float:
    if four_bit:  # embeddings and the head stay in the compute format
        return shape.linear_params * NF4_BYTES + shape.embedding_params * 2
    return shape.params * weight_bytes


def estimate(work: Workload, capacity: float) -> Estimate:
    """Bytes each phase needs for this workload."""
    t, s, wb = work.teacher, work.student, work.weight_bytes
    teacher_tokens = work.teacher_batch * work.max_length
    tokens = work.batch * work.max_length
    lora = s.lora_params(work.lora_targets, work.lora_rank)
    # One layer's saved tensors per token: attention's inputs, q/k/v and output, the norms,
    # LoRA's inputs (~10 h), and the gated MLP's gate, up and product (3 i).
    per_layer_token = wb * (10 * s.hidden + 3 * s.intermediate)
    if work.gradient_checkpointing:
        activations = tokens * (s.layers * s.hidden * wb + per_layer_token)
    else:
        activations = tokens * s.layers * per_layer_token
    parts = {
        "teacher weights" + (" (NF4)" if work.teacher_4bit else ""): (
            _weights(t, work.teacher_4bit, wb) if work.teacher_runs_here else 0.0
        ),
        "teacher logits": (teacher_tokens * t.vocab * (wb + 4) if work.teacher_runs_here else 0.0),
        "student weights" + (" (NF4)" if work.student_4bit else ""): _weights(
            s, work.student_4bit, wb
        ),
        "LoRA + grads + AdamW (fp32)": lora * 16.0,
        "activations": float(activations),
        "student logits, softmax, grad": tokens * s.vocab * (wb + 8.0),
    }
    names = list(parts)
    teacher_phase = parts[names[0]] + parts[names[1]]
    training_phase = sum(parts[n] for n in names[2:])
    return Estimate(parts, teacher_phase, training_phase, capacity, work)


def fit_batch(work: Workload, capacity: float) -> Workload | None:
    """The workload itself when it fits, else one with smaller batches that does: the
    teacher's signal batch halved until its phase fits, then the training batch halved with
    gradient accumulation raised to keep the effective batch. None when batch 1 does not."""
    teacher_batch = work.teacher_batch
    while teacher_batch > 1 and not _phase_fits(
        estimate(replace(work, teacher_batch=teacher_batch), capacity), "teacher", capacity
    ):
        teacher_batch //= 2
    batch = work.batch
    while batch >= 1:
        accumulate = -(-work.batch * work.grad_accum // batch)
        trial = replace(work, batch=batch, grad_accum=accumulate, teacher_batch=teacher_batch)
        if estimate(trial, capacity).fits:
            return trial
        batch //= 2
    return None


def _phase_fits(plan: Estimate, phase: str, capacity: float) -> bool:
    size = plan.teacher_phase if phase == "teacher" else plan.training_phase
    return size * MARGIN + plan._context <= capacity


def device_capacity(device: str) -> float:
    """Bytes the device can give: free CUDA memory, or available RAM on CPU."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device).index or 0)
        return float(free)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(int(line.split()[1]) * 1024)
    import os

    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
