"""PEFT LoRA adapter → llama.cpp GGUF adapter, with llama.cpp's own `convert_lora_to_gguf.py`.

Phones that hold the base GGUF download only this file each week. The upstream converter
(from the same pinned sdist as convert_hf_to_gguf.py, see tasks/export/convert.py) is the
format's reference: it maps PEFT names to GGUF tensor names through the same model classes,
permutes Llama's q/k LoRA factors like the base weights, and writes `adapter.lora.alpha`.
It runs in a subprocess with its own gguf-py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.export.convert import ScriptFailed, run_converter
from tasks.export.files import GGUFFile, describe
from tasks.models.llama_cpp_source import llama_cpp_source

log = logging.getLogger(__name__)

# What the LoRA converter writes: F16 keeps the adapter exact enough for token parity; Q8_0
# halves it again (llama.cpp applies quantized LoRA factors as well).
ADAPTER_TYPES = {"F32": "f32", "F16": "f16", "Q8_0": "q8_0"}
DEFAULT_ADAPTER_TYPE = "F16"


class AdapterConversionError(RuntimeError):
    """llama.cpp's LoRA converter refused the adapter; the message carries its last lines."""


@dataclass(frozen=True)
class AdapterGGUF:
    """A written GGUF adapter and the PEFT facts a phone or operator needs with it."""

    file: GGUFFile
    lora_rank: int
    lora_alpha: float
    target_modules: tuple[str, ...]
    scale: float = 1.0  # llama.cpp's run-time multiplier; alpha/rank is applied inside

    def meta(self, base_sha256: str | None = None) -> dict[str, Any]:
        """The registry entry's `meta`: what the manifest shows beside the adapter file."""
        out: dict[str, Any] = {
            "scale": self.scale,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
            "target_modules": list(self.target_modules),
        }
        if base_sha256 is not None:
            out["base_sha256"] = base_sha256
        return out


def peft_config(adapter_dir: Path) -> dict[str, Any]:
    """adapter_config.json of a PEFT adapter directory."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir} is not a PEFT adapter (no adapter_config.json)")
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _check_supported(config: dict[str, Any], adapter_dir: Path) -> None:
    """Refuse what llama.cpp's LoRA path cannot apply, before the converter runs."""
    problems = []
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type {config.get('peft_type')!r} (only LORA)")
    if config.get("use_dora"):
        problems.append("DoRA")
    if config.get("use_rslora"):
        problems.append("rsLoRA (alpha/sqrt(r) scaling; llama.cpp scales by alpha/r)")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']}")
    if problems:
        raise AdapterConversionError(
            f"{adapter_dir}: llama.cpp cannot apply this adapter: " + ", ".join(problems)
        )


def convert_lora_to_gguf(
    adapter_dir: Path,
    base_dir: Path,
    out_path: Path,
    quantization: str = DEFAULT_ADAPTER_TYPE,
) -> AdapterGGUF:
    """Write the PEFT adapter in `adapter_dir` (trained on `base_dir`) as a GGUF adapter."""
    quantization = quantization.upper()
    if quantization not in ADAPTER_TYPES:
        raise ValueError(f"adapter type {quantization!r} unknown; choose {list(ADAPTER_TYPES)}")
    adapter_dir, base_dir, out_path = Path(adapter_dir), Path(base_dir), Path(out_path)
    config = peft_config(adapter_dir)
    _check_supported(config, adapter_dir)
    if not (base_dir / "config.json").is_file():
        raise FileNotFoundError(f"{base_dir} is not a HF model directory (no config.json)")
    # --base: only the base's config.json is read (no weights), so no Hub access is needed.
    args = [str(llama_cpp_source().lora_converter), "--base", str(base_dir),
            "--outtype", ADAPTER_TYPES[quantization], str(adapter_dir)]  # fmt: skip
    try:
        run_converter(args, out_path, {})
    except ScriptFailed as exc:
        raise AdapterConversionError(
            f"convert_lora_to_gguf.py failed on {adapter_dir}:\n{exc}"
        ) from None
    log.info("adapter %s -> %s (%s)", adapter_dir, out_path, quantization)
    targets = config.get("target_modules") or []
    names = [str(t) for t in targets] if isinstance(targets, list) else [str(targets)]
    return AdapterGGUF(
        file=describe(out_path, quantization),
        lora_rank=int(config["r"]),
        lora_alpha=float(config["lora_alpha"]),
        target_modules=tuple(sorted(names)),
    )


def adapter_gguf_fields(path: Path) -> dict[str, Any]:
    """general.type, adapter.type, adapter.lora.alpha and architecture of a GGUF adapter."""
    import gguf

    fields = gguf.GGUFReader(path).fields
    keys = ("general.type", "general.architecture", "adapter.type", "adapter.lora.alpha")
    return {k: fields[k].contents() for k in keys if k in fields}
