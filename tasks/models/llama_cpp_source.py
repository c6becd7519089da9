"""llama.cpp's own sources from the pinned llama-cpp-python sdist: converter and real vocabularies.

The sdist on PyPI vendors llama.cpp: `convert_hf_to_gguf.py` with its `gguf-py`, and
`models/ggml-vocab-*.gguf` with `.inp`/`.out` reference tokenizations of the real
vocabularies of the seed models (Llama-3.x, Llama-2/TinyLlama, Phi-3, Qwen2.5). It is
fetched once with pip (the only network this project needs) and unpacked into a cache
outside the repository.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# name in the sdist's vendor/llama.cpp/models/ -> what the vocabulary is
VOCABS = {
    "llama-bpe": "Llama-3.x (Llama-3.1-8B teacher, Llama-3.2-1B student), 128256 tokens",
    "llama-spm": "Llama-2 SentencePiece (TinyLlama-1.1B student), 32000 tokens",
    "phi-3": "Phi-3-mini SentencePiece, 32064 tokens",
    "qwen2": "Qwen2 byte-level BPE (Qwen2.5-7B teacher, which adds 19 tokens), 151k tokens",
}


class LlamaCppSourceUnavailable(RuntimeError):
    """The sdist could not be fetched (no registry) and is not in the cache."""


@dataclass(frozen=True)
class LlamaCppSource:
    """Paths inside the unpacked sdist."""

    root: Path
    """The unpacked `llama_cpp_python-<version>/` directory."""

    @property
    def llama_cpp(self) -> Path:
        """The vendored llama.cpp checkout."""
        return self.root / "vendor" / "llama.cpp"

    @property
    def converter(self) -> Path:
        """llama.cpp's HF → GGUF converter script."""
        return self.llama_cpp / "convert_hf_to_gguf.py"

    @property
    def lora_converter(self) -> Path:
        """llama.cpp's PEFT LoRA → GGUF adapter converter script."""
        return self.llama_cpp / "convert_lora_to_gguf.py"

    @property
    def gguf_py(self) -> Path:
        """llama.cpp's own `gguf` package matching the converter (put it first on sys.path)."""
        return self.llama_cpp / "gguf-py"

    def vocab(self, name: str) -> Path:
        """`models/ggml-vocab-<name>.gguf`: a real vocabulary (no weights)."""
        if name not in VOCABS:
            raise KeyError(f"unknown vocabulary {name!r}; choose one of {sorted(VOCABS)}")
        return self.llama_cpp / "models" / f"ggml-vocab-{name}.gguf"

    def chat_template(self, name: str) -> str:
        """`models/templates/<name>.jinja`: a real model's chat template as its Hub repo has it."""
        return (self.llama_cpp / "models" / "templates" / f"{name}.jinja").read_text("utf-8")

    def reference_tokenization(self, name: str) -> list[tuple[str, list[int]]]:
        """(text, llama.cpp's reference token ids) pairs from the `.inp`/`.out` files."""
        base = self.llama_cpp / "models" / f"ggml-vocab-{name}.gguf"
        texts = (
            base.with_suffix(".gguf.inp")
            .read_text(encoding="utf-8")
            .split("\n__ggml_vocab_test__\n")
        )
        ids = base.with_suffix(".gguf.out").read_text(encoding="utf-8").split("\n")
        texts = [t for t in texts if t != ""] if len(texts) != len(ids) else texts
        pairs = []
        for text, line in zip(texts, ids, strict=False):
            pairs.append((text, [int(tok) for tok in line.split()]))
        return pairs


def cache_dir() -> Path:
    """$DISTILLERY_CACHE_DIR or ~/.cache/distillery: fixtures fetched once, outside the repo."""
    from tasks.settings import PipelineSettings

    return PipelineSettings.read().cache_dir


def sdist_path(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """The cached sdist archive, downloaded with pip on first use."""
    downloads = cache_dir() / "sdist"
    archive = downloads / f"llama_cpp_python-{version}.tar.gz"
    if archive.is_file():
        return archive
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(downloads),
           f"llama-cpp-python=={version}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not archive.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LlamaCppSourceUnavailable(
            f"could not download llama-cpp-python=={version} from the package registry ({last})"
        )
    return archive


def llama_cpp_source(version: str = LLAMA_CPP_PYTHON_VERSION) -> LlamaCppSource:
    """The unpacked sdist (fetched and unpacked once into the cache)."""
    root = cache_dir() / "src" / f"llama_cpp_python-{version}"
    done = root / ".unpacked"
    if not done.exists():
        archive = sdist_path(version)
        root.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(root.parent, filter="data")
        done.touch()
    return LlamaCppSource(root)
