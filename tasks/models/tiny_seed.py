"""The seed models' real architectures, vocabularies and chat templates, with random weights.

Two sizes from the same builders:

- tiny students (hidden 256, 2 layers) with the features llama.cpp must get right for the
  real model — Phi-3-mini's fused qkv/gate_up projections, Llama-3.2-1B's llama3 rope
  scaling, GQA and tied embeddings, TinyLlama's GQA — for the export tests;
- every seed model, teachers included, at its real shape (tasks/models/memory_plan.py:
  HUB_SHAPES), at full depth or fewer layers: the `shape-*` presets (tasks/models/shape.py).

The real tokenizer is rebuilt from the vocabulary GGUFs in the pinned llama-cpp-python sdist
(Mistral v3's from the mistral-common wheel), written the way the real Hub repos ship it
(SentencePiece `tokenizer.model` for Mistral/Phi-3/TinyLlama, a byte-level BPE
`tokenizer.json` for Llama-3.x/Qwen2.5), so the exporter sees what it will see on a real model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.models.llama_cpp_source import LlamaCppSource, cache_dir, llama_cpp_source
from tasks.models.memory_plan import HUB_SHAPES, ModelShape

FIXTURE_VERSION = "v3"  # bump when a builder changes: the cache key (v3: real norm eps, SWA)

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
# Mistral-7B-Instruct-v0.3's template (mistral "v3", as llama.cpp's test-chat-template.cpp
# quotes it) without its tool-calling branches: the system message goes before the last user
# turn, roles must alternate, and there is no generation prompt (a prompt ends in [/INST]).
MISTRAL_V3_TEMPLATE = (
    '{%- if messages[0]["role"] == "system" %}{%- set system_message = messages[0]["content"] %}'
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}"
    "{%- endif %}{%- for message in loop_messages %}"
    '{%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}'
    '{{- raise_exception("After the optional system message, conversation roles must '
    'alternate user/assistant/user/assistant/...") }}{%- endif %}{%- endfor %}'
    "{{- bos_token }}{%- for message in loop_messages %}"
    '{%- if message["role"] == "user" %}{%- if loop.last and system_message is defined %}'
    '{{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}'
    '{%- else %}{{- "[INST] " + message["content"] + "[/INST]" }}{%- endif %}'
    '{%- elif message["role"] == "assistant" %}{{- " " + message["content"]|trim + eos_token }}'
    '{%- else %}{{- raise_exception("Only user and assistant roles are supported, with the '
    'exception of an initial optional system message!") }}{%- endif %}{%- endfor %}'
)
# Pre-tokenizer splits (public in the real tokenizer.json files and in llama.cpp's
# llama-vocab.cpp): Llama-3 groups up to three digits, Qwen2 splits every digit.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")
# Qwen2.5 names 19 of the Qwen2 vocabulary's padding ids (151646-151664); the first 11 are
# special tokens, the tool-call and fill-in-the-middle ones are ordinary added tokens.
QWEN25_ADDED = (
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
QWEN25_SPECIAL = 11
MISTRAL_V3 = "mistral-v3"  # not a llama.cpp vocabulary: the mistral-common wheel's v3 model


@dataclass(frozen=True)
class BpeFlavour:
    """How a byte-level BPE vocabulary tokenizes, beyond its tokens and merges."""

    split: str
    ignore_merges: bool  # a whole-word token wins over the merges (Llama-3's tokenizer.json)
    nfc: bool  # NFC-normalize first (Qwen2's tokenizer.json)
    add_bos: bool
    added: tuple[str, ...] = ()  # names the real tokenizer gives the vocabulary's padding ids
    special_added: int = 0  # how many of `added` are special tokens


BPE_FLAVOURS = {
    "llama-bpe": BpeFlavour(LLAMA3_SPLIT, ignore_merges=True, nfc=False, add_bos=True),
    "qwen2": BpeFlavour(QWEN2_SPLIT, False, True, False, QWEN25_ADDED, QWEN25_SPECIAL),
}


@dataclass(frozen=True)
class SeedModel:
    """One seed model as the builders make it: real vocabulary, chat template and config.

    Its widths, depth, vocabulary size and tied embeddings are the published ones in
    HUB_SHAPES; `num_heads`/`num_kv_heads` are the tiny fixture's (hidden 256).
    """

    name: str
    real_model: str  # the Hub id it stands in for (a key of HUB_SHAPES)
    vocab: str  # ggml-vocab-<vocab>.gguf in the sdist, or MISTRAL_V3
    model_type: str  # transformers' model_type: llama, phi3, mistral, qwen2
    num_heads: int
    num_kv_heads: int
    chat_template: str  # the template, or "llama.cpp:<name>" for models/templates/<name>.jinja
    license: str
    organization: str
    extra_config: dict[str, Any] = field(default_factory=dict)  # the real config's other keys
    eos_token: str | None = None  # the generation end, where it is not the vocabulary's eos
    pad_token: str | None = None

    @property
    def shape(self) -> ModelShape:
        """The real model's published shape."""
        return HUB_SHAPES[self.real_model]


SeedStudent = SeedModel  # the name the export fixtures and benches use

_LLAMA31_ROPE = {
    "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
}  # fmt: skip

SEED_STUDENTS = {
    s.name: s
    for s in (
        SeedModel(
            "tiny-phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", "phi-3", "phi3",
            4, 4, PHI3_TEMPLATE, "mit", "Microsoft",
            {"original_max_position_embeddings": 4096, "max_position_embeddings": 4096,
             "sliding_window": 2047, "rms_norm_eps": 1e-5},
        ),
        SeedModel(
            "tiny-llama-3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", "llama-bpe", "llama",
            4, 2, LLAMA3_TEMPLATE, "llama3.2", "Meta Llama",
            {"max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
             "rope_parameters": {**_LLAMA31_ROPE, "factor": 32.0}},
            eos_token="<|eot_id|>",  # Llama-3.2-Instruct's generation end
        ),
        SeedModel(
            "tiny-tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama-spm", "llama",
            4, 1, ZEPHYR_TEMPLATE, "apache-2.0", "TinyLlama",
            {"max_position_embeddings": 2048, "rms_norm_eps": 1e-5},
        ),
    )
}  # fmt: skip
SEED_TEACHERS = {
    s.name: s
    for s in (
        SeedModel(
            "mistral-7b", "mistralai/Mistral-7B-Instruct-v0.3", MISTRAL_V3, "mistral",
            4, 1, MISTRAL_V3_TEMPLATE, "apache-2.0", "Mistral AI",
            {"max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "sliding_window": None,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}},
        ),
        SeedModel(
            "qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", "qwen2", "qwen2",
            4, 1, "llama.cpp:Qwen-Qwen2.5-7B-Instruct", "apache-2.0", "Qwen",
            {"max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "use_sliding_window": False,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}},
            eos_token="<|im_end|>", pad_token="<|endoftext|>",
        ),
        SeedModel(
            "llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "llama-bpe", "llama",
            4, 1, "llama.cpp:meta-llama-Llama-3.1-8B-Instruct", "llama3.1", "Meta Llama",
            {"max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
             "rope_parameters": _LLAMA31_ROPE},
            eos_token="<|eot_id|>",
        ),
    )
}  # fmt: skip
SEED_MODELS = {**SEED_STUDENTS, **SEED_TEACHERS}


def seed_model_for(real_model: str) -> SeedModel:
    """The seed model standing in for Hub id `real_model` (the tiny student's entry for the
    three students: the same tokenizer and config, built at the real shape)."""
    for model in SEED_MODELS.values():
        if model.real_model == real_model:
            return model
    raise KeyError(f"no seed model stands in for {real_model!r}")


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


def _spm_tokenizer(model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    added: list[AddedToken] = []
    pad = model.pad_token
    if model.vocab == MISTRAL_V3:  # its control tokens are pieces of the model itself
        from tasks.models import mistral_vocab

        mistral_vocab.write_v3_files(out_dir)
    else:
        fields = _vocab_fields(src, model.vocab)
        types, tokens = fields["tokenizer.ggml.token_type"], fields["tokenizer.ggml.tokens"]
        # Phi-3: 32000 SentencePiece pieces, then added tokens (<|user|>, ...) and padding.
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
        added = [
            AddedToken(tokens[i], special=types[i] == 3, normalized=False, rstrip=False)
            for i in range(n_pieces, len(tokens))
            if types[i] in (3, 4)  # CONTROL, USER_DEFINED; UNUSED ids are model-only padding
        ]
        if pad is None and "tokenizer.ggml.padding_token_id" in fields:
            pad = tokens[fields["tokenizer.ggml.padding_token_id"]]
    # transformers converts tokenizer.model into tokenizer.json, as for the real repos.
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    tokenizer.add_tokens(added)
    if pad is not None:
        tokenizer.pad_token = pad
    _finish(tokenizer, model, src, out_dir)


def _bpe_tokenizer(model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast

    flavour = BPE_FLAVOURS[model.vocab]
    fields = _vocab_fields(src, model.vocab)
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    normal = {tok: i for i, tok in enumerate(tokens) if types[i] == 1}
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    backend = Tokenizer(models.BPE(normal, merges, ignore_merges=flavour.ignore_merges))
    if flavour.nfc:
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(flavour.split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    # Control tokens follow the ordinary ones, so they keep their ids; then the names the
    # real tokenizer gives the vocabulary's padding ids (Qwen2.5's), also in order.
    controls = [tokens[i] for i, t in enumerate(types) if t == 3]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in controls])
    for i, name in enumerate(flavour.added):
        special = i < flavour.special_added
        backend.add_tokens([AddedToken(name, special=special, normalized=False)])
    if len(backend.get_vocab(with_added_tokens=True)) != len(normal) + len(controls) + len(
        flavour.added
    ):
        raise ValueError(f"{model.vocab}: ordinary tokens are not all below the control tokens")
    bos = tokens[fields["tokenizer.ggml.bos_token_id"]] if flavour.add_bos else None
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=model.eos_token or tokens[fields["tokenizer.ggml.eos_token_id"]],
        pad_token=model.pad_token,
        add_bos_token=flavour.add_bos,
    )
    _finish(tokenizer, model, src, out_dir)


def chat_template(model: SeedModel, src: LlamaCppSource) -> str:
    """The model's chat template (a real one from the sdist where it ships one)."""
    if model.chat_template.startswith("llama.cpp:"):
        return src.chat_template(model.chat_template.removeprefix("llama.cpp:"))
    return model.chat_template


def _finish(tokenizer: Any, model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    tokenizer.chat_template = chat_template(model, src)
    tokenizer.model_max_length = model.extra_config.get("max_position_embeddings", 2048)
    tokenizer.save_pretrained(out_dir)


def build_seed_tokenizer(model: SeedModel, out_dir: Path) -> Path:
    """Write `model`'s real tokenizer (files as its Hub repo has them) into `out_dir`."""
    src = llama_cpp_source()
    out_dir.mkdir(parents=True, exist_ok=True)
    if model.vocab == MISTRAL_V3 or model.vocab not in BPE_FLAVOURS:
        _spm_tokenizer(model, src, out_dir)
    else:
        _bpe_tokenizer(model, src, out_dir)
    return out_dir


def seed_config(model: SeedModel, tokenizer: Any, shape: ModelShape | None = None) -> Any:
    """The transformers config: at `shape` (the real widths, any depth), else tiny."""
    from transformers import AutoConfig

    if shape is None:  # the tiny fixture: real vocabulary and features, 256 wide
        sizes = {
            "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": model.num_heads, "num_key_value_heads": model.num_kv_heads,
        }  # fmt: skip
        shape = model.shape
    else:
        sizes = {
            "hidden_size": shape.hidden, "intermediate_size": shape.intermediate,
            "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
            "num_key_value_heads": shape.kv_heads,
        }  # fmt: skip
    return AutoConfig.for_model(
        model.model_type,
        vocab_size=shape.vocab,
        tie_word_embeddings=shape.tied_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.02,
        **sizes,
        **model.extra_config,
    )


def seed_weights(config: Any, seed: int, dtype: Any = None) -> Any:
    """A random model of `config`, the same for the same seed and dtype (fp32 by default;
    a 16-bit `dtype` is drawn in it directly, with no fp32 copy at any time)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    dtype = dtype or torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    # Embeddings and output 5x wider than the rest: clearer top-1 margins (fewer random
    # near-ties), while the 0.02 blocks keep attention from the chaotic regime where any
    # rounding flips a choice.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
        if not config.tie_word_embeddings:
            model.get_output_embeddings().weight.mul_(5.0)
    return model


def write_model_card(model: SeedModel, out_dir: Path, what: str) -> None:
    """README.md whose front matter carries license/organisation, as on the Hub."""
    (out_dir / "README.md").write_text(
        f"---\nlicense: {model.license}\nbase_model: {model.real_model}\n---\n"
        f"{what} for {model.real_model} (random weights, tests only).\n"
    )


def build_seed_student(name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write tiny `name` (a key of SEED_STUDENTS) with its real tokenizer into `out_dir`."""
    from transformers import AutoTokenizer

    student = SEED_STUDENTS[name]
    build_seed_tokenizer(student, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    seed_weights(seed_config(student, tokenizer), seed).save_pretrained(out_dir)
    write_model_card(student, out_dir, "Tiny random stand-in")
    (out_dir / "distillery_fixture.json").write_text(
        json.dumps({"name": name, "real_model": student.real_model, "vocab": student.vocab})
    )
    return out_dir


def seed_student_dir(name: str) -> Path:
    """The cached tiny student `name`, built once per machine outside the repository."""
    if name not in SEED_STUDENTS:
        raise KeyError(f"unknown seed student {name!r}; choose one of {sorted(SEED_STUDENTS)}")
    final = cache_dir() / "fixtures" / FIXTURE_VERSION / name
    return build_once(final, "distillery_fixture.json", lambda tmp: build_seed_student(name, tmp))


def build_once(final: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """`final`, built by `build` into a temporary sibling and renamed into place, unless a
    complete copy (one holding `marker`) is already there."""
    if (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)  # another process may have won the race: keep its copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
