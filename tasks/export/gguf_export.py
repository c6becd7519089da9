"""Write a merged HF model as a GGUF file (F16, Q8_0, Q4_0) in pure Python with `gguf`."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from tasks.export.gguf_vocab import add_vocab, load_vocab

log = logging.getLogger(__name__)

QUANT_TYPES = {
    "F32": gguf.GGMLQuantizationType.F32,
    "F16": gguf.GGMLQuantizationType.F16,
    "Q8_0": gguf.GGMLQuantizationType.Q8_0,
    "Q4_0": gguf.GGMLQuantizationType.Q4_0,
    "Q4_1": gguf.GGMLQuantizationType.Q4_1,
}
FILE_TYPES = {
    "F32": gguf.LlamaFileType.ALL_F32,
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
}
ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "phi3": gguf.MODEL_ARCH.PHI3}
# Embedding/output matrices hurt most when squeezed to 4 bits (llama.cpp's own quantizer keeps
# them at Q6_K); Q8_0 is the closest type we can write in pure Python.
EMBEDDING_TENSORS = {"token_embd.weight", "output.weight"}


@dataclass(frozen=True)
class GGUFFile:
    """One written GGUF file, as a registry records it."""

    path: Path
    quantization: str
    size: int
    sha256: str
    notes: tuple[str, ...] = field(default=())


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: Path, quantization: str, notes: tuple[str, ...] = ()) -> GGUFFile:
    """Size and checksum of a written file."""
    return GGUFFile(path, quantization, path.stat().st_size, sha256_of(path), notes)


def permute_qk(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotary layout (two halves) -> llama.cpp interleaved pairs (as convert_hf_to_gguf)."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def choose_type(name: str, shape: tuple[int, ...], quantization: str) -> tuple[str, str | None]:
    """The GGML type a tensor is stored in, and a note when it differs from the file's type."""
    if len(shape) < 2 or quantization == "F32":
        return "F32", None  # norms and other 1-D tensors stay F32, as llama.cpp expects
    if quantization == "F16":
        return "F16", None
    four_bit = quantization in ("Q4_0", "Q4_1")
    wanted = "Q8_0" if four_bit and name in EMBEDDING_TENSORS else quantization
    block = gguf.GGML_QUANT_SIZES[QUANT_TYPES[wanted]][0]
    if shape[-1] % block:
        return "F16", f"{name}: row size {shape[-1]} is not a multiple of {block}; stored F16"
    if wanted != quantization:
        return wanted, f"{name}: kept at {wanted} (embedding precision)"
    return wanted, None


def _rope_theta(config: PretrainedConfig) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _check_rope(config: PretrainedConfig) -> None:
    params = getattr(config, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", "default")
    if rope_type != "default":
        raise ValueError(f"rope_type {rope_type!r} is not supported by this GGUF writer yet")


def model_name(config: PretrainedConfig, hf_dir: Path) -> tuple[str, str | None]:
    """general.name: the Hub id when known, else the folder name; and a note if it was changed."""
    name = str(getattr(config, "_name_or_path", "") or "")
    if not name or name.startswith((".", "/")) or Path(name).exists():
        name = Path(hf_dir).resolve().name
    # llama.cpp applies SentencePiece token fix-ups to any model *named* phi3/phi-3 and fails on
    # a byte-level vocabulary (no "</s>"); Phi-4 is phi3-arch + BPE and is not named so either.
    if config.model_type == "phi3" and re.search(r"phi-?3", name, re.IGNORECASE):
        renamed = re.sub(r"(?i)phi-?3", "phi", name)
        return renamed, f"general.name {name!r} written as {renamed!r} (llama.cpp phi-3 fix-ups)"
    return name, None


def add_hparams(
    writer: gguf.GGUFWriter, config: PretrainedConfig, quantization: str, name: str
) -> None:
    """The <arch>.* keys llama.cpp reads to build the graph."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_type("model")
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_vocab_size(config.vocab_size)
    if config.model_type == "phi3":
        partial = (getattr(config, "rope_parameters", None) or {}).get("partial_rotary_factor", 1.0)
        writer.add_rope_dimension_count(int(partial * config.hidden_size) // heads)
        original = getattr(config, "original_max_position_embeddings", None)
        writer.add_rope_scaling_orig_ctx_len(original or config.max_position_embeddings)
        writer.add_sliding_window(config.sliding_window or 0)
    else:
        writer.add_rope_dimension_count(head_dim)
        if head_dim != config.hidden_size // heads:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
    writer.add_file_type(FILE_TYPES[quantization])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def gguf_tensors(model: torch.nn.Module, arch: gguf.MODEL_ARCH) -> dict[str, np.ndarray]:
    """State dict renamed to GGUF tensor names, in float32, q/k permuted for llama."""
    config = model.config
    name_map = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    out: dict[str, np.ndarray] = {}
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd when output.weight is absent
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        base, _, suffix = hf_name.rpartition(".")
        gguf_base = name_map.get_name(base)
        if gguf_base is None:
            raise ValueError(f"no GGUF name for tensor {hf_name!r} ({arch.name})")
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if arch == gguf.MODEL_ARCH.LLAMA and gguf_base.endswith((".attn_q", ".attn_k")):
            kv = config.num_key_value_heads or config.num_attention_heads
            heads = config.num_attention_heads if gguf_base.endswith(".attn_q") else kv
            array = permute_qk(array, heads)
        out[f"{gguf_base}.{suffix}"] = array
    return out


def write_gguf(hf_dir: Path, out_path: Path, quantization: str) -> GGUFFile:
    """Convert the HF model + tokenizer in `hf_dir` to one GGUF file of the given quantization."""
    quantization = quantization.upper()
    if quantization not in QUANT_TYPES:
        raise ValueError(
            f"quantization {quantization!r} not writable here; use {list(QUANT_TYPES)}"
        )
    config = AutoConfig.from_pretrained(hf_dir)
    if config.model_type not in ARCHS:
        raise ValueError(f"model_type {config.model_type!r} not supported; use {list(ARCHS)}")
    _check_rope(config)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    arch = ARCHS[config.model_type]
    vocab = load_vocab(Path(hf_dir), config.vocab_size)
    tensors = gguf_tensors(model, arch)
    del model

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(tmp_path, gguf.MODEL_ARCH_NAMES[arch])
    name, name_note = model_name(config, Path(hf_dir))
    add_hparams(writer, config, quantization, name)
    add_vocab(writer, vocab)
    notes = list(vocab.notes) + ([name_note] if name_note else [])
    for name, array in tensors.items():
        type_name, note = choose_type(name, array.shape, quantization)
        if note:
            notes.append(note)
        qtype = QUANT_TYPES[type_name]
        data = gguf.quants.quantize(array, qtype)
        raw_dtype = qtype if type_name not in ("F32", "F16") else None
        writer.add_tensor(name, data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # Rename last so a crash never leaves a half-written file under the published name.
    os.replace(tmp_path, out_path)
    for note in notes:
        log.info("gguf export: %s", note)
    return describe(out_path, quantization, tuple(notes))
