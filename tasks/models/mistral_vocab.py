"""Mistral-7B-v0.3's vocabulary from the `mistral-common` wheel on PyPI (no Hub needed).

Mistral's own tokenizer library ships its SentencePiece models as package data. Its v3 model
(`mistral_instruct_tokenizer_240323.model.v3`) is the tokenizer family of
Mistral-7B-Instruct-v0.3: 32768 pieces with `[INST]`, `[/INST]`, `[TOOL_CALLS]` ... at the same
ids (3-9) and the same byte and word pieces; control tokens that v0.3's Hub files call
`[control_N]` carry later names here (`[IMG]`, `[PREFIX]`, ...). Good enough to decide the
pair's strategy offline; a run that loads the real tokenizer decides again on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tasks.models.llama_cpp_source import cache_dir

MISTRAL_COMMON_VERSION = "1.13.1"
_MODEL = "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3"
SOURCE = f"mistral-common {MISTRAL_COMMON_VERSION} v3 SentencePiece model"


class MistralVocabUnavailable(RuntimeError):
    """The wheel could not be fetched (no registry) and is not in the cache."""


def _wheel(version: str = MISTRAL_COMMON_VERSION) -> Path:
    """The cached mistral-common wheel, downloaded with pip (no dependencies) on first use."""
    downloads = cache_dir() / "wheels-src"
    found = sorted(downloads.glob(f"mistral_common-{version}-*.whl"))
    if found:
        return found[0]
    downloads.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(downloads),
           f"mistral-common=={version}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    found = sorted(downloads.glob(f"mistral_common-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MistralVocabUnavailable(
            f"could not download mistral-common=={version} from the package registry ({last})"
        )
    return found[0]


# As Mistral-7B-Instruct-v0.3's tokenizer_config.json sets them.
TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "add_bos_token": True,
    "add_eos_token": False,
    "legacy": False,
}


def write_v3_files(out_dir: Path) -> None:
    """`tokenizer.model` (the v3 SentencePiece model) and `tokenizer_config.json` in `out_dir`,
    as the Hub repo ships them; AutoTokenizer converts them into a fast tokenizer."""
    with zipfile.ZipFile(_wheel()) as wheel:
        (out_dir / "tokenizer.model").write_bytes(wheel.read(_MODEL))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))


def mistral_v3_tokenizer_dir() -> Path:
    """A transformers tokenizer folder built from the v3 model, converted once and cached."""
    from transformers import AutoTokenizer

    saved = cache_dir() / "tokenizers" / f"mistral-v3-mistral-common-{MISTRAL_COMMON_VERSION}"
    if (saved / "tokenizer.json").is_file():
        return saved
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_v3_files(work)
        tokenizer = AutoTokenizer.from_pretrained(work)  # converts tokenizer.model
        saved.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(saved)
    return saved
