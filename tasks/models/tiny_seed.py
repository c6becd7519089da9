"""Tiny random students with the seed students' real architectures and real vocabularies.

Each fixture has the features llama.cpp must get right for the real model — Phi-3-mini's
fused qkv/gate_up projections, Llama-3.2-1B's llama3 rope scaling, GQA and tied embeddings,
TinyLlama's GQA — at a few hidden units, with the real tokenizer rebuilt from the vocabulary
GGUFs in the pinned llama-cpp-python sdist. The tokenizer files are written the way the real
Hub repos ship them (SentencePiece `tokenizer.model` for Phi-3/TinyLlama, a Llama-3
`tokenizer.json`), so the exporter sees what it will see on a real student.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.models.llama_cpp_source import LlamaCppSource, cache_dir, llama_cpp_source

FIXTURE_VERSION = "v2"  # bump when a builder changes: the cache key

# Chat templates of the real repos (same rendering; shortened where the real one only adds
# tool-calling branches a tiny test never reaches).
PHI3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + '<|end|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
ZEPHYR_TEMPLATE = (  # TinyLlama-1.1B-Chat-v1.0
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + eos_token }}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}"
)
# Llama-3's pre-tokenizer split (public in Meta's tokenizer.json and llama.cpp's llama-bpe).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class SeedStudent:
    """One tiny stand-in for a real seed student."""

    name: str
    real_model: str  # the Hub id it stands in for
    vocab: str  # ggml-vocab-<vocab>.gguf in the sdist
    model_type: str  # "llama" or "phi3"
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    tie_word_embeddings: bool
    chat_template: str
    license: str
    organization: str
    extra_config: dict[str, Any] = field(default_factory=dict)


SEED_STUDENTS = {
    s.name: s
    for s in (
        SeedStudent(
            "tiny-phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", "phi-3", "phi3", 32064,
            4, 4, False, PHI3_TEMPLATE, "mit", "Microsoft",
            {"original_max_position_embeddings": 4096, "max_position_embeddings": 4096},
        ),
        SeedStudent(
            "tiny-llama-3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", "llama-bpe", "llama", 128256,
            4, 2, True, LLAMA3_TEMPLATE, "llama3.2", "Meta Llama",
            {
                "max_position_embeddings": 131072,
                "rope_parameters": {
                    "rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192,
                },
            },
        ),
        SeedStudent(
            "tiny-tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama-spm", "llama",
            32000, 4, 1, False, ZEPHYR_TEMPLATE, "apache-2.0", "TinyLlama",
            {"max_position_embeddings": 2048},
        ),
    )
}  # fmt: skip


def _vocab_fields(src: LlamaCppSource, vocab: str) -> dict[str, Any]:
    """tokenizer.* keys of a vocabulary GGUF, read with the sdist's own gguf-py reader."""
    import gguf  # the installed gguf reads these files; only the converter needs the sdist's

    fields = gguf.GGUFReader(src.vocab(vocab)).fields
    return {k: f.contents() for k, f in fields.items() if k.startswith("tokenizer.")}


def _write_sentencepiece(fields: dict[str, Any], n_pieces: int, out: Path) -> None:
    """A Llama-2 style SentencePiece BPE model (byte fallback) from GGUF pieces and scores."""
    from sentencepiece import sentencepiece_model_pb2

    sp_pb2: Any = sentencepiece_model_pb2  # generated protobuf classes: no stubs for mypy

    proto = sp_pb2.ModelProto()
    # GGUF token types 1..6 are SentencePiece's piece types NORMAL..BYTE plus one.
    for piece, score, kind in zip(
        fields["tokenizer.ggml.tokens"][:n_pieces],
        fields["tokenizer.ggml.scores"][:n_pieces],
        fields["tokenizer.ggml.token_type"][:n_pieces],
        strict=True,
    ):
        proto.pieces.add(piece=piece, score=float(score), type=int(kind))
    spec = proto.trainer_spec
    spec.model_type = sp_pb2.TrainerSpec.BPE
    spec.vocab_size = n_pieces
    spec.byte_fallback = True
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    norm = proto.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", True
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    out.write_bytes(proto.SerializeToString())


def _spm_tokenizer(student: SeedStudent, fields: dict[str, Any], out_dir: Path) -> None:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    types, tokens = fields["tokenizer.ggml.token_type"], fields["tokenizer.ggml.tokens"]
    # Phi-3: 32000 SentencePiece pieces, then added tokens (<|user|>, ...) and unused padding.
    n_pieces = 32000
    _write_sentencepiece(fields, n_pieces, out_dir / "tokenizer.model")
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": tokens[fields["tokenizer.ggml.bos_token_id"]],
        "eos_token": tokens[fields["tokenizer.ggml.eos_token_id"]],
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": False,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config))
    # transformers converts tokenizer.model into tokenizer.json, as for the real repos.
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    added = [
        AddedToken(tokens[i], special=types[i] == 3, normalized=False, rstrip=False)
        for i in range(n_pieces, len(tokens))
        if types[i] in (3, 4)  # CONTROL, USER_DEFINED; UNUSED ids are model-only padding
    ]
    tokenizer.add_tokens(added)
    if "tokenizer.ggml.padding_token_id" in fields:
        tokenizer.pad_token = tokens[fields["tokenizer.ggml.padding_token_id"]]
    _finish(tokenizer, student, out_dir)


def _bpe_tokenizer(student: SeedStudent, fields: dict[str, Any], out_dir: Path) -> None:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    normal = {tok: i for i, tok in enumerate(tokens) if types[i] == 1}
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    backend = Tokenizer(models.BPE(normal, merges, ignore_merges=True))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [
            AddedToken(tokens[i], special=True, normalized=False)
            for i, t in enumerate(types)
            if t == 3
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=tokens[fields["tokenizer.ggml.bos_token_id"]],
        eos_token="<|eot_id|>",  # Llama-3.2-Instruct's generation end
        add_bos_token=True,
    )
    _finish(tokenizer, student, out_dir)


def _finish(tokenizer: Any, student: SeedStudent, out_dir: Path) -> None:
    tokenizer.chat_template = student.chat_template
    tokenizer.model_max_length = student.extra_config.get("max_position_embeddings", 2048)
    tokenizer.save_pretrained(out_dir)


def _model(student: SeedStudent, tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        student.model_type,
        vocab_size=student.vocab_size,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=student.num_heads,
        num_key_value_heads=student.num_kv_heads,
        tie_word_embeddings=student.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.02,
        **student.extra_config,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).float().eval()
    # Embeddings and output 5x wider than the rest: clearer top-1 margins (fewer random
    # near-ties), while the 0.02 blocks keep attention from the chaotic regime where any
    # rounding flips a choice.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
        if not student.tie_word_embeddings:
            model.get_output_embeddings().weight.mul_(5.0)
    return model


def build_seed_student(name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write tiny `name` (a key of SEED_STUDENTS) with its real tokenizer into `out_dir`."""
    from transformers import AutoTokenizer

    student = SEED_STUDENTS[name]
    src = llama_cpp_source()
    fields = _vocab_fields(src, student.vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fields["tokenizer.ggml.model"] == "llama":
        _spm_tokenizer(student, fields, out_dir)
    else:
        _bpe_tokenizer(student, fields, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    _model(student, tokenizer, seed).save_pretrained(out_dir)
    # The model card front matter carries license/organisation, as on the Hub.
    (out_dir / "README.md").write_text(
        f"---\nlicense: {student.license}\nbase_model: {student.real_model}\n---\n"
        f"Tiny random stand-in for {student.real_model} (tests only).\n"
    )
    (out_dir / "distillery_fixture.json").write_text(
        json.dumps({"name": name, "real_model": student.real_model, "vocab": student.vocab})
    )
    return out_dir


def seed_student_dir(name: str) -> Path:
    """The cached tiny student `name`, built once per machine outside the repository."""
    if name not in SEED_STUDENTS:
        raise KeyError(f"unknown seed student {name!r}; choose one of {sorted(SEED_STUDENTS)}")
    final = cache_dir() / "fixtures" / FIXTURE_VERSION / name
    if (final / "distillery_fixture.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}-"))
    try:
        build_seed_student(name, tmp)
        try:
            os.rename(tmp, final)  # another process may have won the race: keep its copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
