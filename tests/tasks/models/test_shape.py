"""Shape presets: the seed models' real configs, tokenizers and templates, random weights.

The preset table, the `-L<layers>` names, the memory plan and the CLI run in the default
tier (nothing is built). Building tokenizers and models is the `shapes` tier, CI's own step:

    python -m pytest -m shapes tests/tasks/models/test_shape.py tests/flows/test_shape_cycle.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from storage.registry.types import check_student
from tasks.distill.config import DistillConfig
from tasks.distill.memory import workload
from tasks.distill.vocabs import SEED_STUDENTS, SEED_TEACHERS
from tasks.models.memory_plan import HUB_SHAPES, preset_shape
from tasks.models.presets import (
    PRESETS,
    UnknownPresetError,
    find_preset,
    get_preset,
    preset_names,
)

SHAPES = {  # shape preset -> the Hub preset it stands in for
    "shape-mistral-7b": "mistral-7b-instruct-v0.3",
    "shape-qwen2.5-7b": "qwen2.5-7b-instruct",
    "shape-llama-3.1-8b": "llama-3.1-8b-instruct",
    "shape-phi-3-mini": "phi-3-mini-4k-instruct",
    "shape-llama-3.2-1b": "llama-3.2-1b-instruct",
    "shape-tinyllama-1.1b": "tinyllama-1.1b-chat",
}


def test_shape_presets_are_their_hub_presets_built_locally() -> None:
    assert sorted(n for n, p in PRESETS.items() if p.source == "shape") == sorted(SHAPES)
    for name, real in SHAPES.items():
        shape, hub = get_preset(name), get_preset(real)
        assert shape.is_local and shape.hub_id == hub.hub_id and shape.role == hub.role
        for key in ("lora_targets", "lora_r", "max_seq_len", "per_device_batch_size"):
            assert getattr(shape, key) == getattr(hub, key), (name, key)
        assert shape.load_in_4bit_on_cuda == hub.load_in_4bit_on_cuda
        assert shape.shape_layers == HUB_SHAPES[hub.hub_id].layers  # full depth by default
        assert shape.revision.startswith("shape-") and f"-L{shape.shape_layers}-" in shape.revision
    assert len({get_preset(n).tiny_seed for n in SHAPES}) == len(SHAPES)  # own weights each


def test_a_depth_suffix_names_the_same_model_fewer_layers_deep() -> None:
    short = get_preset("shape-llama-3.2-1b-L2")
    full = get_preset("shape-llama-3.2-1b")
    assert short.name == "shape-llama-3.2-1b-L2" and short.shape_layers == 2
    assert short.revision != full.revision and short.tiny_seed == full.tiny_seed
    assert short.hub_id == full.hub_id and short.lora_targets == full.lora_targets
    assert get_preset("shape-llama-3.2-1b-L16") == full  # its full depth is the preset itself
    assert find_preset("shape-tinyllama-1.1b-L2") is not None and find_preset("nope") is None
    for bad in ("shape-llama-3.2-1b-L0", "shape-llama-3.2-1b-L17", "shape-llama-3.2-1b-Lx"):
        with pytest.raises(UnknownPresetError, match="takes 1 to 16 layers"):
            get_preset(bad)
    with pytest.raises(UnknownPresetError, match="known presets"):
        get_preset("tiny-llama-student-L1")  # only shape presets take a depth
    # The name is a student name everywhere: registry, files, URLs.
    assert check_student("shape-tinyllama-1.1b-L2") == "shape-tinyllama-1.1b-L2"
    assert "shape-llama-3.2-1b-L2" not in preset_names()


def test_the_memory_plan_sees_the_real_models() -> None:
    for name, real in SHAPES.items():
        assert preset_shape(name) == HUB_SHAPES[get_preset(real).hub_id]
    two = preset_shape("shape-qwen2.5-7b-L2")
    assert two.layers == 2 and two.vocab == 152064 and two.hidden == 3584
    config = DistillConfig()
    for teacher in SEED_TEACHERS:
        for student in SEED_STUDENTS:
            pair = (f"shape-{_short(teacher)}", f"shape-{_short(student)}")
            for nf4 in (True, False):
                plan = workload(teacher, student, config, weight_bytes=2.0, nf4_possible=nf4)
                same = workload(*pair, config, weight_bytes=2.0, nf4_possible=nf4)
                assert same == plan, (teacher, student)


def _short(hub_preset: str) -> str:
    return next(k for k, v in SHAPES.items() if v == hub_preset).removeprefix("shape-")


def test_the_cli_takes_shape_presets_at_any_depth(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["memory", "--teacher", "shape-qwen2.5-7b", "--student", "shape-phi-3-mini"]
    assert main([*args, "--card", "t4"]) == 0
    shaped = capsys.readouterr().out.split(":", 1)[1]
    real = ["memory", "--teacher", "qwen2.5-7b-instruct", "--student", "phi-3-mini-4k-instruct"]
    assert main([*real, "--card", "t4"]) == 0
    assert capsys.readouterr().out.split(":", 1)[1] == shaped  # the same plan, line by line
    small = ["--teacher", "shape-mistral-7b-L1", "--student", "shape-tinyllama-1.1b-L2"]
    assert main(["memory", *small, "--card", "cpu-64"]) == 0
    assert "shape-mistral-7b-L1 → shape-tinyllama-1.1b-L2" in capsys.readouterr().out
    assert main(["memory", "--teacher", "shape-mistral-7b-L40", *small[2:]]) == 2
    assert "takes 1 to 32 layers" in capsys.readouterr().err
    # `distillery cycle` parses the same names (its --help lists the full-depth ones).
    from cli.commands.options import STUDENTS, TEACHERS, PresetChoice

    assert PresetChoice(TEACHERS).convert("shape-mistral-7b-L1", None, None) == small[1]
    assert PresetChoice(STUDENTS).convert("shape-tinyllama-1.1b", None, None)
    with pytest.raises(Exception, match="shape-mistral-7b-L1"):
        PresetChoice(STUDENTS).convert("shape-mistral-7b-L1", None, None)  # a teacher


# --- the `shapes` tier: tokenizers, templates and models are built ---------------------------


@pytest.fixture(scope="module")
def sdist() -> Any:
    from tasks.models.llama_cpp_source import LlamaCppSourceUnavailable, llama_cpp_source

    try:
        return llama_cpp_source()
    except LlamaCppSourceUnavailable as exc:
        pytest.skip(f"llama.cpp sources unavailable: {exc}")


def _tokenizer(name: str) -> Any:
    from tasks.models.load import load_tokenizer

    return load_tokenizer(name)


@pytest.mark.shapes
@pytest.mark.parametrize(
    ("preset", "vocab", "size"),
    [("shape-qwen2.5-7b", "qwen2", 151665), ("shape-llama-3.1-8b", "llama-bpe", 128256)],
)
def test_byte_level_tokenizers_tokenize_like_llama_cpp_s_references(
    preset: str, vocab: str, size: int, sdist: Any
) -> None:
    tok = _tokenizer(preset)
    assert len(tok) == size
    pairs = sdist.reference_tokenization(vocab)
    assert len(pairs) > 30
    for text, reference in pairs:
        assert tok(text, add_special_tokens=False)["input_ids"] == reference, repr(text)
    # The pre-tokenizers differ in digits: Qwen2 splits each one, Llama-3 groups up to three.
    pieces = [p for p, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("in 12345")]
    assert pieces == (
        ["in", "Ġ", "1", "2", "3", "4", "5"] if vocab == "qwen2" else ["in", "Ġ", "123", "45"]
    )


@pytest.mark.shapes
def test_each_tokenizer_has_its_real_special_tokens() -> None:
    qwen = _tokenizer("shape-qwen2.5-7b")
    assert qwen.bos_token is None and qwen("hi")["input_ids"] == [6023]  # no BOS
    assert (qwen.eos_token, qwen.eos_token_id, qwen.pad_token_id) == ("<|im_end|>", 151645, 151643)
    assert qwen.convert_tokens_to_ids(["<|file_sep|>", "<tool_call>"]) == [151664, 151657]
    assert "<tool_call>" not in qwen.all_special_tokens  # an ordinary added token, as on the Hub
    llama = _tokenizer("shape-llama-3.1-8b")
    assert (llama.bos_token_id, llama.eos_token) == (128000, "<|eot_id|>")
    assert llama("hi")["input_ids"][0] == 128000
    mistral = _tokenizer("shape-mistral-7b")
    assert len(mistral) == 32768 and mistral.convert_tokens_to_ids("[INST]") == 3
    assert mistral("[INST] hi[/INST]")["input_ids"][:2] == [1, 3]


@pytest.mark.shapes
def test_mistral_tokenizes_like_its_sentencepiece_model(sdist: Any) -> None:
    import sentencepiece

    from tasks.models.shape import tokenizer_dir

    folder = tokenizer_dir(get_preset("shape-mistral-7b"))
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    tok = _tokenizer("shape-mistral-7b")
    texts = [t for t, _ in sdist.reference_tokenization("llama-spm")]
    # As for the other SentencePiece students (tests/tasks/export/test_llama_cpp.py):
    # transformers drops a leading space that sentencepiece keeps; all else must match.
    differ = [t for t in texts if tok(t, add_special_tokens=False)["input_ids"] != sp.encode(t)]
    assert all(t[:1].isspace() for t in differ), differ


CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Sort: b, a"},
]


@pytest.mark.shapes
def test_chat_templates_render_as_the_real_models_do() -> None:
    qwen = _tokenizer("shape-qwen2.5-7b").apply_chat_template(
        CHAT[1:2], tokenize=False, add_generation_prompt=True
    )
    assert qwen == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    llama = _tokenizer("shape-llama-3.1-8b").apply_chat_template(
        CHAT[:2], tokenize=False, add_generation_prompt=True
    )
    assert llama == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
        "Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    mistral = _tokenizer("shape-mistral-7b")
    text = mistral.apply_chat_template(CHAT, tokenize=False)
    assert text == "<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nSort: b, a[/INST]"
    with pytest.raises(Exception, match="must alternate"):
        mistral.apply_chat_template([CHAT[1], CHAT[1]], tokenize=False)


@pytest.mark.shapes
@pytest.mark.parametrize(
    ("name", "model_type", "extra"),
    [
        ("shape-tinyllama-1.1b-L1", "llama", {"rms_norm_eps": 1e-5}),
        ("shape-phi-3-mini-L1", "phi3", {"sliding_window": 2047}),
        ("shape-llama-3.2-1b-L1", "llama", {"tie_word_embeddings": True}),
    ],
)
def test_a_materialized_student_has_the_real_config(
    name: str, model_type: str, extra: dict[str, object]
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from tasks.models.load import materialize_preset

    folder = materialize_preset(name)
    config = json.loads((folder / "config.json").read_text())
    shape = preset_shape(name)
    assert config["model_type"] == model_type and config["num_hidden_layers"] == 1
    widths = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")
    real = [shape.hidden, shape.intermediate, shape.heads, shape.kv_heads]
    assert [config[k] for k in widths] == real
    assert config["vocab_size"] == shape.vocab and config["dtype"] == "bfloat16"
    assert all(config[k] == v for k, v in extra.items()), config
    if name.startswith("shape-llama-3.2"):
        assert config["rope_parameters"]["rope_type"] == "llama3"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == shape.params  # the plan's count
    assert (folder / "README.md").read_text().startswith("---\nlicense: ")


@pytest.mark.shapes
def test_weights_are_the_same_for_the_same_preset(tmp_path: Path) -> None:
    from tasks.models.shape import write_shape_model

    preset = get_preset("shape-tinyllama-1.1b-L1")
    digests = []
    for run in ("a", "b"):
        folder = write_shape_model(preset, tmp_path / run)
        digests.append(hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
