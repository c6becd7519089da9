"""Write a merged HF model as GGUF files: llama.cpp's converter, then llama.cpp's quantizer.

F16 is converted once; every other type is requantized from it by llama.cpp (the same path
as `llama-quantize`, so Q4_K_M keeps its Q6_K output matrix as upstream intends). Without
llama-cpp-python, F32/F16/Q8_0 still come from the converter and the rest are skipped with
the reason.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from tasks.export.convert import CONVERTER_TYPES, GGUFMetadata, convert_hf_to_gguf
from tasks.export.files import GGUFFile, describe, sha256_of
from tasks.export.llama_cpp import FTYPES, Skipped, llama_cpp_missing_reason, quantize

log = logging.getLogger(__name__)

QUANTIZATIONS = tuple(FTYPES)  # everything llama.cpp's quantizer can make
__all__ = [
    "QUANTIZATIONS",
    "GGUFFile",
    "GGUFMetadata",
    "base_metadata",
    "describe",
    "sha256_of",
    "write_gguf",
    "write_gguf_files",
]


def _check(quantizations: Sequence[str]) -> list[str]:
    wanted = [q.upper() for q in quantizations]
    unknown = [q for q in wanted if q not in QUANTIZATIONS]
    if unknown:
        raise ValueError(f"unknown quantizations {unknown}; choose from {list(QUANTIZATIONS)}")
    return wanted


def write_gguf_files(
    hf_dir: Path,
    out_dir: Path,
    name: str,
    quantizations: Sequence[str],
    metadata: GGUFMetadata | None = None,
) -> tuple[dict[str, GGUFFile], list[Skipped]]:
    """`<out_dir>/<name>-<QUANT>.gguf` for each quantization asked for, plus what was skipped."""
    wanted = _check(quantizations)
    out_dir = Path(out_dir)
    files: dict[str, GGUFFile] = {}
    skipped: list[Skipped] = []
    missing = llama_cpp_missing_reason()
    needs_f16 = missing is None and any(q not in ("F32", "F16") for q in wanted)
    f16_path = out_dir / f"{name}-F16.gguf"
    if "F16" in wanted or needs_f16:
        files["F16"] = convert_hf_to_gguf(hf_dir, f16_path, "F16", metadata)
    for quant in wanted:
        if quant in files:
            continue
        path = out_dir / f"{name}-{quant}.gguf"
        if quant == "F32" or (missing is not None and quant in CONVERTER_TYPES):
            files[quant] = convert_hf_to_gguf(hf_dir, path, quant, metadata)
        elif missing is not None:
            skipped.append(Skipped(quant, missing))
        else:
            result = quantize(f16_path, path, quant)
            if isinstance(result, Skipped):
                skipped.append(result)
            else:
                files[quant] = result
    if "F16" not in wanted and "F16" in files:  # only the quantizer's source: not published
        files.pop("F16").path.unlink(missing_ok=True)
    return files, skipped


def write_gguf(
    hf_dir: Path, out_path: Path, quantization: str, metadata: GGUFMetadata | None = None
) -> GGUFFile:
    """One GGUF file of `quantization` at `out_path` (raises when it cannot be made here)."""
    quant = _check([quantization])[0]
    out_path = Path(out_path)
    stem = out_path.name.removesuffix(".gguf")
    staging = out_path.parent / f".{stem}-staging"
    files, skipped = write_gguf_files(hf_dir, staging, "m", [quant], metadata)
    if skipped:
        raise RuntimeError(f"{quant} not written: {skipped[0].reason}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    files[quant].path.replace(out_path)
    # The quantizer's log (and its F16 source) may still be there: remove the whole folder.
    shutil.rmtree(staging, ignore_errors=True)
    return GGUFFile(out_path, quant, files[quant].size, files[quant].sha256, files[quant].notes)


def _card_front_matter(hf_dir: Path) -> dict[str, str]:
    """`key: value` lines of a model card's YAML front matter (flat keys only)."""
    card = Path(hf_dir) / "README.md"
    if not card.is_file():
        return {}
    text = card.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"---\n(.*?)\n---", text, re.DOTALL)
    pairs = (line.split(":", 1) for line in (match.group(1) if match else "").splitlines())
    return {k.strip(): v.strip().strip("'\"") for k, v in (p for p in pairs if len(p) == 2) if v}


def base_metadata(
    name: str,
    version: str | None,
    base_dir: Path,
    base_model: str | None = None,
    base_gguf: Path | None = None,
) -> GGUFMetadata:
    """general.* for a student: its own name/version, its base model's license, organisation
    and pre-tokenizer (read from the base GGUF when one exists, else the model card/Hub id)."""
    license_ = organization = pre = None
    if base_gguf is not None and Path(base_gguf).is_file():
        import gguf

        fields = gguf.GGUFReader(base_gguf).fields

        def text(key: str) -> str | None:
            return str(fields[key].contents()) if key in fields else None

        license_, organization = text("general.license"), text("general.organization")
        pre = text("tokenizer.ggml.pre")
    card = _card_front_matter(base_dir)
    license_ = license_ or card.get("license")
    base_model = base_model or card.get("base_model")
    if organization is None and base_model and "/" in base_model:
        organization = base_model.split("/", 1)[0]
    basename = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")
    log.debug("metadata for %s: %s", name, json.dumps([license_, organization, pre]))
    return GGUFMetadata(
        name=name,
        version=version,
        basename=basename,
        license=license_,
        organization=organization,
        base_model=base_model,
        pre_tokenizer=pre,
    )


def preset_metadata(preset_name: str, version: str | None = None) -> GGUFMetadata | None:
    """base_metadata for a student preset (None for names that are not presets)."""
    from tasks.models.load import materialize_preset, smollm2_gguf_path
    from tasks.models.presets import find_preset

    preset = find_preset(preset_name)  # a shape preset's `-L<layers>` name too
    if preset is None:
        return None
    # The SmolLM2 presets are built from the packaged GGUF: its keys are the base's own.
    base_gguf = smollm2_gguf_path() if preset.source in ("smollm2_gguf", "pruned_smollm2") else None
    base_model = None if preset.source == "tiny" else preset.hub_id
    return base_metadata(
        preset_name, version, materialize_preset(preset_name), base_model, base_gguf
    )
