"""HF model → GGUF with llama.cpp's own converter (`convert_hf_to_gguf.py` from the pinned sdist).

Why the upstream converter and not our own writer: it is the reference llama.cpp is tested
against — SentencePiece vocabularies with scores and token types (Phi-3, TinyLlama), the
Llama-3 pre-tokenizer found by hashing the tokenizer's output, llama3 rope scaling as a
`rope_freqs` tensor, Phi-3's fused projections — and new architectures arrive with upstream.
It runs in a subprocess with its own `gguf-py`, so its version never clashes with ours.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tasks.export.files import GGUFFile, describe
from tasks.models.llama_cpp_source import llama_cpp_source

log = logging.getLogger(__name__)

# What the converter itself can write (the rest comes from llama.cpp's quantizer).
CONVERTER_TYPES = {"F32": "f32", "F16": "f16", "Q8_0": "q8_0"}
DRIVER = Path(__file__).with_name("convert_driver.py")


class ConversionError(RuntimeError):
    """llama.cpp's converter refused the model; the message carries its last lines."""


@dataclass(frozen=True)
class GGUFMetadata:
    """general.* keys written into the file (llama.cpp's metadata override file)."""

    name: str
    version: str | None = None
    basename: str | None = None
    license: str | None = None
    organization: str | None = None
    base_model: str | None = None  # Hub id of the model this one was distilled from
    # The base model's tokenizer.ggml.pre: written when llama.cpp has no hash for the
    # tokenizer, and checked against what the converter wrote otherwise.
    pre_tokenizer: str | None = None

    def override(self) -> dict[str, object]:
        """The `--metadata` JSON: only keys that are set, so the converter fills the rest."""
        keys = {
            "general.name": self.name,
            "general.version": self.version,
            "general.basename": self.basename,
            "general.organization": self.organization,
        }
        out: dict[str, object] = {k: v for k, v in keys.items() if v}
        if self.base_model:
            org, _, name = self.base_model.rpartition("/")
            out["general.base_models"] = [
                {"name": name, "organization": org or None, "repo_url": _hub_url(self.base_model)}
            ]
        return out


def _hub_url(hub_id: str) -> str:
    return f"https://huggingface.co/{hub_id}"


def structural_pre(hf_dir: Path) -> str:
    """A llama.cpp pre-tokenizer name read off tokenizer.json, for tokenizers it has no hash of.

    The converter knows real tokenizers by the hash of their output on a fixed text; a locally
    trained one (tests) or a retokenized student has no entry, so name it by its structure.
    """
    path = Path(hf_dir) / "tokenizer.json"
    if not path.is_file():
        return "default"
    pre = json.loads(path.read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [part.get("type") for part in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"  # the plain GPT-2 regex
    if kinds == ["Digits", "ByteLevel"]:
        return "smollm"  # digits one by one, then the GPT-2 regex
    return "default"


class ScriptFailed(RuntimeError):
    """A llama.cpp converter script exited with an error; the message is its last lines."""


def run_converter(
    args: list[str], out_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a converter script of the pinned llama.cpp sdist, writing `--outfile out_path`.

    The script writes to `<out_path>.partial`, renamed once it exits cleanly, so a crash never
    leaves half a file under the final name. It runs offline, with its own gguf-py.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    cmd = [sys.executable, *args, "--outfile", str(tmp_path)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    full_env.pop("NO_LOCAL_GGUF", None)  # the converter must use its own gguf-py
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=3600)
    if proc.returncode != 0 or not tmp_path.is_file():
        tmp_path.unlink(missing_ok=True)
        raise ScriptFailed("\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:]))
    os.replace(tmp_path, out_path)
    return proc


def convert_hf_to_gguf(
    hf_dir: Path, out_path: Path, quantization: str, metadata: GGUFMetadata | None = None
) -> GGUFFile:
    """Write `hf_dir` (a merged HF model with its tokenizer) as one GGUF file (F32/F16/Q8_0)."""
    quantization = quantization.upper()
    if quantization not in CONVERTER_TYPES:
        raise ValueError(
            f"the converter writes {list(CONVERTER_TYPES)}; {quantization} comes from the quantizer"
        )
    hf_dir, out_path = Path(hf_dir), Path(out_path)
    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir} is not a HF model directory (no config.json)")
    source = llama_cpp_source()
    with tempfile.TemporaryDirectory(prefix="gguf-meta-") as meta_dir:
        args = [str(DRIVER), str(source.converter), str(hf_dir),
                "--outtype", CONVERTER_TYPES[quantization]]  # fmt: skip
        if metadata is not None:
            meta_file = Path(meta_dir) / "metadata.json"
            meta_file.write_text(json.dumps(metadata.override()), encoding="utf-8")
            args += ["--metadata", str(meta_file)]
        env = {
            "DISTILLERY_PRE_FALLBACK": (metadata and metadata.pre_tokenizer)
            or structural_pre(hf_dir),
            "DISTILLERY_LICENSE": (metadata.license if metadata else None) or "",
        }
        try:
            proc = run_converter(args, out_path, env)
        except ScriptFailed as exc:
            raise ConversionError(
                f"convert_hf_to_gguf.py failed on {hf_dir} ({quantization}):\n{exc}"
            ) from None
    notes = _notes(proc.stderr)
    written_pre = file_pre_tokenizer(out_path)
    if metadata and metadata.pre_tokenizer and written_pre != metadata.pre_tokenizer:
        notes.append(
            f"pre-tokenizer {written_pre!r} differs from the base's {metadata.pre_tokenizer!r}"
        )
    for note in notes:
        log.info("convert_hf_to_gguf: %s", note)
    return describe(out_path, quantization, tuple(notes))


def file_pre_tokenizer(path: Path) -> str | None:
    """tokenizer.ggml.pre of a GGUF file (None for SentencePiece files without one)."""
    import gguf

    field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return str(field.contents()) if field is not None else None


def _notes(stderr: str) -> list[str]:
    """The converter's warnings (one line each, banners dropped) and our fallback lines."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith(("WARNING:", "DISTILLERY:")):
            continue
        text = line.split(":", 2)[-1].strip() if line.startswith("WARNING:") else line[12:].strip()
        if text and not text.startswith("*"):
            out.append(text)
    return out
