"""Tiny students for export tests: the seed students' architectures with their real
vocabularies (from the pinned llama-cpp-python sdist), plus a SmolLM2-like byte-level llama."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from tasks.models.llama_cpp_source import LlamaCppSourceUnavailable, llama_cpp_source
from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

# Short English texts: parity perplexity is scored over every token of each.
PARITY_TEXTS = [
    "Rewrite the sentence and make your writing clearer by keeping it concise.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "Give three tips for staying healthy during the winter months.",
    "How many days are there in a leap year? There are 366 days in a leap year.",
]
# student -> the llama.cpp reference vocabulary it carries (None: locally trained BPE)
STUDENT_VOCABS = {
    "tiny-phi-3-mini": "phi-3",
    "tiny-llama-3.2-1b": "llama-bpe",
    "tiny-tinyllama-1.1b": "llama-spm",
    "tiny-smollm2-like": None,
}
QUANTS = ("F16", "Q8_0", "Q4_0", "Q4_K_M")


def save_variant(out_dir: Path, arch: str, **config_changes: object) -> Path:
    """Save the shared tiny model of `arch`, with config changes (e.g. GQA, tied embeddings)."""
    tokenizer = build_tiny_tokenizer("a")
    model = build_tiny_model(arch, tokenizer, seed=0)  # type: ignore[arg-type]
    if config_changes:
        config = AutoConfig.for_model(**(model.config.to_dict() | config_changes))
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).float().eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny SmolLM2-like llama: byte-level BPE with ChatML, GQA and tied embeddings."""
    out = save_variant(
        tmp_path_factory.mktemp("tiny-llama"),
        "llama",
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    # Wider embeddings (as in tasks/models/tiny_seed.py): fewer random near-ties in top-1.
    model = AutoModelForCausalLM.from_pretrained(out)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def llama_cpp_src():  # type: ignore[no-untyped-def]
    """The unpacked sdist (converter + vocabularies), or a skip naming why it is missing."""
    try:
        return llama_cpp_source()
    except LlamaCppSourceUnavailable as exc:
        pytest.skip(f"llama.cpp sources unavailable: {exc}")


@pytest.fixture(scope="session")
def student_dirs(llama_dir: Path, llama_cpp_src: object) -> dict[str, Path]:
    """Every tiny student's HF directory (seed students cached in ~/.cache/distillery)."""
    from tasks.models.tiny_seed import seed_student_dir

    dirs = {name: seed_student_dir(name) for name in STUDENT_VOCABS if name != "tiny-smollm2-like"}
    return {**dirs, "tiny-smollm2-like": llama_dir}


@pytest.fixture(scope="session")
def phi3_dir(student_dirs: dict[str, Path]) -> Path:
    """Tiny Phi-3-mini (fused qkv and gate_up, SentencePiece vocabulary of 32064)."""
    return student_dirs["tiny-phi-3-mini"]


@pytest.fixture(scope="session")
def model_dirs(llama_dir: Path, phi3_dir: Path) -> dict[str, Path]:
    return {"llama": llama_dir, "phi3": phi3_dir}


@pytest.fixture
def parity_texts() -> list[str]:
    return list(PARITY_TEXTS)


@pytest.fixture(scope="session")
def exported(
    student_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Path]:
    """(student, quantization) -> GGUF file, written once per session through the exporter."""
    from tasks.export import base_metadata, write_gguf_files
    from tasks.models.seed_models import SEED_STUDENTS

    out: dict[tuple[str, str], Path] = {}
    for name, hf_dir in student_dirs.items():
        real = SEED_STUDENTS[name].real_model if name in SEED_STUDENTS else None
        metadata = base_metadata(f"{name}-student", "v3", hf_dir, real)
        folder = tmp_path_factory.mktemp(f"gguf-{name}")
        files, _ = write_gguf_files(hf_dir, folder, name, QUANTS, metadata)
        out.update({(name, quant): f.path for quant, f in files.items()})
    return out
