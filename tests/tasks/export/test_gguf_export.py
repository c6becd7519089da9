"""GGUF files from llama.cpp's converter: the keys and tensors each seed architecture needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from transformers import AutoConfig, AutoTokenizer

from tasks.export import write_gguf
from tasks.export.convert import ConversionError, GGUFMetadata, structural_pre
from tasks.export.files import sha256_of
from tasks.export.gguf_export import base_metadata


class _Fields:
    """A GGUF file's keys, decoded on access (decoding 128k tokens at once takes minutes)."""

    def __init__(self, path: Path) -> None:
        self.fields = GGUFReader(path).fields

    def __getitem__(self, key: str) -> object:
        return self.fields[key].contents()

    def count(self, key: str) -> int:
        return len(self.fields[key].data)

    def item(self, key: str, index: int) -> object:
        return self.fields[key].contents(index)


def _fields(path: Path) -> _Fields:
    return _Fields(path)


def _tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {
        t.name: (t.tensor_type.name, tuple(int(x) for x in t.shape))
        for t in GGUFReader(path).tensors
    }


def test_names_license_and_organisation_are_the_students_and_its_base(exported: dict) -> None:
    fields = _fields(exported["tiny-llama-3.2-1b", "Q8_0"])
    assert fields["general.name"] == "tiny-llama-3.2-1b-student"
    assert fields["general.version"] == "v3"
    assert fields["general.basename"] == "tiny-llama-3.2-1b-student"
    assert fields["general.license"] == "llama3.2"
    assert fields["general.organization"] == "meta-llama"
    assert fields["general.base_model.0.repo_url"].endswith("meta-llama/Llama-3.2-1B-Instruct")
    assert fields["general.file_type"] == 7  # MOSTLY_Q8_0


def test_llama_3_2_keeps_llama3_rope_gqa_tied_embeddings_and_its_pre_tokenizer(
    student_dirs: dict, exported: dict
) -> None:
    config = AutoConfig.from_pretrained(student_dirs["tiny-llama-3.2-1b"])
    path = exported["tiny-llama-3.2-1b", "F16"]
    fields, tensors = _fields(path), _tensors(path)
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "llama-bpe"
    assert fields.count("tokenizer.ggml.tokens") == 128256
    assert fields["llama.attention.head_count_kv"] == 2 and fields["llama.rope.freq_base"] == 5e5
    # llama3 rope scaling is written as per-frequency factors, as llama.cpp's graph reads them
    kind, shape = tensors["rope_freqs.weight"]
    head_dim = config.hidden_size // config.num_attention_heads
    assert kind == "F32" and shape == (head_dim // 2,)
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert fields["tokenizer.ggml.eos_token_id"] == 128009  # <|eot_id|>


def test_rope_freqs_are_llama3_factors(exported: dict) -> None:
    reader = GGUFReader(exported["tiny-llama-3.2-1b", "F16"])
    [freqs] = [t for t in reader.tensors if t.name == "rope_freqs.weight"]
    factors = np.asarray(freqs.data)
    # high frequencies are kept (1), the lowest are divided by the factor 32
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(32.0)


def test_phi3_has_fused_projections_and_a_sentencepiece_vocabulary(
    student_dirs: dict, exported: dict
) -> None:
    config = AutoConfig.from_pretrained(student_dirs["tiny-phi-3-mini"])
    path = exported["tiny-phi-3-mini", "F16"]
    fields, tensors = _fields(path), _tensors(path)
    hidden, inter = config.hidden_size, config.intermediate_size
    assert tensors["blk.0.attn_qkv.weight"][1] == (hidden, 3 * hidden)
    assert tensors["blk.0.ffn_up.weight"][1] == (hidden, 2 * inter)
    assert fields["tokenizer.ggml.model"] == "llama"
    assert fields.count("tokenizer.ggml.scores") == 32064
    assert fields.item("tokenizer.ggml.tokens", 32007) == "<|end|>"
    assert fields["general.license"] == "mit"


def test_tinyllama_sentencepiece_vocabulary_with_gqa(exported: dict) -> None:
    fields = _fields(exported["tiny-tinyllama-1.1b", "Q4_K_M"])
    assert (
        fields["tokenizer.ggml.model"] == "llama" and fields["llama.attention.head_count_kv"] == 1
    )
    assert fields.count("tokenizer.ggml.tokens") == 32000
    assert fields.item("tokenizer.ggml.tokens", 2) == "</s>"
    assert fields["general.file_type"] == 15  # MOSTLY_Q4_K_M


def test_chat_template_is_the_tokenizers(student_dirs: dict, exported: dict) -> None:
    for name, hf_dir in student_dirs.items():
        template = AutoTokenizer.from_pretrained(hf_dir).chat_template
        assert _fields(exported[name, "F16"])["tokenizer.chat_template"] == template, name


def test_unknown_pre_tokenizer_is_named_by_structure_with_a_note(
    llama_dir: Path, tmp_path: Path
) -> None:
    assert structural_pre(llama_dir) == "gpt-2"
    gguf_file = write_gguf(llama_dir, tmp_path / "m-F16.gguf", "F16")
    assert _fields(gguf_file.path)["tokenizer.ggml.pre"] == "gpt-2"
    assert any("pre-tokenizer not known" in note for note in gguf_file.notes)
    assert gguf_file.sha256 == sha256_of(gguf_file.path) and gguf_file.size > 0
    # the base's own name wins over the structural guess
    meta = GGUFMetadata(name="s", pre_tokenizer="smollm")
    smol = write_gguf(llama_dir, tmp_path / "s-F16.gguf", "F16", meta)
    assert _fields(smol.path)["tokenizer.ggml.pre"] == "smollm"


def test_base_metadata_reads_the_model_card(student_dirs: dict) -> None:
    meta = base_metadata("My Student", "v2", student_dirs["tiny-tinyllama-1.1b"])
    assert (meta.license, meta.organization) == ("apache-2.0", "TinyLlama")
    assert meta.base_model == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert meta.basename == "my-student" and meta.version == "v2"
    override = meta.override()
    assert json.dumps(override) and override["general.name"] == "My Student"


def test_bad_inputs_are_named(llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Q3_X"):
        write_gguf(llama_dir, tmp_path / "x.gguf", "Q3_X")
    with pytest.raises(FileNotFoundError, match="config.json"):
        write_gguf(tmp_path, tmp_path / "x.gguf", "F16")
    other = shutil.copytree(llama_dir, tmp_path / "gpt2")
    (other / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"]}')
    with pytest.raises(ConversionError, match="NoSuchForCausalLM"):
        write_gguf(other, tmp_path / "y.gguf", "F16")
    assert not list(tmp_path.glob("*.gguf*"))  # nothing half-written left behind
