"""The seed models the project stands in for: their vocabularies, chat templates and configs.

One entry per real model (the three students, the three teachers), read by the tokenizer
builder (tasks/models/seed_tokenizer.py), the tiny export fixtures (tasks/models/tiny_seed.py)
and the shape presets (tasks/models/shape.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
