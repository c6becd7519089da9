"""GGUF export round trip: write with `gguf`, read back with transformers and gguf.GGUFReader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

from tasks.export import write_gguf
from tasks.export.gguf_export import choose_type, permute_qk, sha256_of
from tests.tasks.export.conftest import PARITY_TEXTS, save_variant

# Largest logit error allowed, relative to the largest reference logit.
LOGIT_TOLERANCE = {"F16": 2e-3, "Q8_0": 3e-2, "Q4_0": 0.25, "Q4_1": 0.25}


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _export_alone(hf_dir: Path, out_dir: Path, quant: str) -> Path:
    """Write the GGUF into a folder of its own: it must load without the HF files beside it."""
    gguf_file = write_gguf(hf_dir, out_dir / f"tiny-{quant}.gguf", quant)
    assert gguf_file.path.is_file() and gguf_file.size == gguf_file.path.stat().st_size
    assert gguf_file.sha256 == sha256_of(gguf_file.path)
    return gguf_file.path


@pytest.fixture(scope="module")
def exported(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every (arch, quantization) file, written once for the module."""
    out = {}
    for arch, hf_dir in model_dirs.items():
        for quant in LOGIT_TOLERANCE:
            folder = tmp_path_factory.mktemp(f"gguf-{arch}-{quant}")
            out[arch, quant] = _export_alone(hf_dir, folder, quant)
    return out


@pytest.mark.parametrize("arch", ["llama", "phi3"])
def test_round_trip_logits_within_tolerance(arch: str, model_dirs: dict, exported: dict) -> None:
    hf_dir = model_dirs[arch]
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    ids = tokenizer(PARITY_TEXTS[0], return_tensors="pt")["input_ids"]
    reference = _logits(AutoModelForCausalLM.from_pretrained(hf_dir).eval(), ids)
    errors = {}
    for quant, tolerance in LOGIT_TOLERANCE.items():
        path = exported[arch, quant]
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
        errors[quant] = (
            (_logits(model, ids) - reference).abs().max() / reference.abs().max()
        ).item()
        assert errors[quant] < tolerance, f"{arch} {quant}: relative logit error {errors[quant]}"
    # Fewer bits, more error: proves each file really holds its own quantization.
    assert errors["F16"] < errors["Q8_0"] < min(errors["Q4_0"], errors["Q4_1"]), errors


@pytest.mark.parametrize("arch", ["llama", "phi3"])
def test_metadata_read_back(arch: str, model_dirs: dict, exported: dict) -> None:
    hf_dir = model_dirs[arch]
    config = AutoModelForCausalLM.from_pretrained(hf_dir).config
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    reader = GGUFReader(exported[arch, "Q8_0"])
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == arch
    expected = {
        "context_length": config.max_position_embeddings,
        "embedding_length": config.hidden_size,
        "block_count": config.num_hidden_layers,
        "feed_forward_length": config.intermediate_size,
        "attention.head_count": config.num_attention_heads,
        "attention.head_count_kv": 2,
        "rope.freq_base": config.rope_parameters["rope_theta"],
    }
    for key, value in expected.items():
        assert fields[f"{arch}.{key}"] == value, key
    assert fields[f"{arch}.attention.layer_norm_rms_epsilon"] == pytest.approx(config.rms_norm_eps)
    assert fields["general.file_type"] == 7  # MOSTLY_Q8_0
    assert fields["tokenizer.ggml.model"] == "gpt2"
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == config.vocab_size and tokens[tokenizer.eos_token_id] == "<|im_end|>"
    assert len(fields["tokenizer.ggml.merges"]) > 0
    assert fields["tokenizer.ggml.token_type"][tokenizer.eos_token_id] == 3  # CONTROL
    assert fields["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert fields["tokenizer.ggml.padding_token_id"] == tokenizer.pad_token_id
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32
    assert types["blk.0.ffn_down.weight"] == GGMLQuantizationType.Q8_0
    if arch == "phi3":  # fused tensors, as llama.cpp's phi3 graph expects
        hidden, inter = config.hidden_size, config.intermediate_size
        shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}
        assert shapes["blk.0.attn_qkv.weight"] == (hidden, hidden + 2 * 2 * hidden // 4)
        assert shapes["blk.0.ffn_up.weight"] == (hidden, 2 * inter)
        assert "output.weight" in types
    else:  # tied embeddings: llama.cpp reuses token_embd, so no output tensor is written
        assert "output.weight" not in types


def test_q4_0_keeps_embeddings_at_q8_0(exported: dict) -> None:
    types = {t.name: t.tensor_type for t in GGUFReader(exported["phi3", "Q4_0"]).tensors}
    assert types["blk.1.attn_qkv.weight"] == GGMLQuantizationType.Q4_0
    assert types["token_embd.weight"] == GGMLQuantizationType.Q8_0
    assert types["output.weight"] == GGMLQuantizationType.Q8_0


@pytest.mark.parametrize("arch", ["llama", "phi3"])
def test_tokenizer_read_back_from_gguf(arch: str, model_dirs: dict, exported: dict) -> None:
    hf_tokenizer = AutoTokenizer.from_pretrained(model_dirs[arch])
    path = exported[arch, "F16"]
    gguf_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    chat = hf_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Sort 3 words: apple, banana!"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert gguf_tokenizer(chat)["input_ids"] == hf_tokenizer(chat)["input_ids"]
    assert gguf_tokenizer.eos_token == hf_tokenizer.eos_token


def test_permutation_is_what_transformers_reverses() -> None:
    rng = np.random.default_rng(0)
    heads, head_dim, hidden = 4, 8, 16
    weights = rng.standard_normal((heads * head_dim, hidden)).astype(np.float32)
    permuted = permute_qk(weights, heads)
    assert not np.array_equal(permuted, weights)
    restored = LlamaTensorProcessor()._reverse_permute_weights(permuted, heads, heads)
    np.testing.assert_array_equal(restored, weights)


def test_rows_not_multiple_of_block_fall_back_to_f16(tmp_path: Path) -> None:
    assert choose_type("blk.0.attn_norm.weight", (64,), "Q4_0") == ("F32", None)
    kind, note = choose_type("blk.0.ffn_up.weight", (128, 48), "Q8_0")
    assert kind == "F16" and note and "48" in note
    # hidden size 48 is not a multiple of the 32-wide Q8_0 block: every matrix falls back.
    hf_dir = save_variant(tmp_path / "hf", "llama", hidden_size=48, intermediate_size=96)
    gguf_file = write_gguf(hf_dir, tmp_path / "gguf" / "odd.gguf", "Q8_0")
    assert any("not a multiple of 32" in note for note in gguf_file.notes)
    types = {t.name: t.tensor_type for t in GGUFReader(gguf_file.path).tensors}
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.F16
    model = AutoModelForCausalLM.from_pretrained(gguf_file.path.parent, gguf_file="odd.gguf")
    assert model.config.hidden_size == 48


def test_bad_inputs_are_named(llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Q3_X"):
        write_gguf(llama_dir, tmp_path / "x.gguf", "Q3_X")
    other = shutil.copytree(llama_dir, tmp_path / "gpt2")
    (other / "config.json").write_text('{"model_type": "gpt2", "n_layer": 1, "n_embd": 32}')
    with pytest.raises(ValueError, match="gpt2"):
        write_gguf(other, tmp_path / "y.gguf", "F16")


def test_sentencepiece_style_tokenizer_is_refused() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tasks.export.gguf_vocab import build_vocab

    backend = Tokenizer(models.BPE(vocab={"\u2581a": 0, "b": 1}, merges=[], byte_fallback=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    with pytest.raises(ValueError, match="SentencePiece"):
        build_vocab(PreTrainedTokenizerFast(tokenizer_object=backend), 2)


def test_phi3_name_avoids_llama_cpp_sentencepiece_fixups(phi3_dir: Path, exported: dict) -> None:
    reader = GGUFReader(exported["phi3", "F16"])
    name = reader.fields["general.name"].contents()
    assert "phi3" not in name.lower() and "phi-3" not in name.lower()
    assert "/" not in name  # a folder name, never a local path
