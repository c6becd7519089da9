"""The tiny tokenizers and models used by every fast test."""

from __future__ import annotations

import subprocess
import sys

import torch

from tasks.models.tiny import build_tiny_model, build_tiny_tokenizer

MESSAGES = [
    {"role": "user", "content": "Give three tips for staying healthy."},
    {"role": "assistant", "content": "Sleep well, eat vegetables and walk daily."},
]


def test_tokenizer_is_deterministic_across_processes() -> None:
    code = (
        "import json; from tasks.models.tiny import build_tiny_tokenizer as b; "
        "print(json.dumps(sorted(b('a').get_vocab().items())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    assert json.loads(out.stdout) == [
        list(kv) for kv in sorted(build_tiny_tokenizer("a").get_vocab().items())
    ]


def test_variants_have_different_token_maps_and_same_specials() -> None:
    a, b = build_tiny_tokenizer("a"), build_tiny_tokenizer("b")
    assert a.get_vocab() != b.get_vocab()
    for tok in (a, b):
        assert tok.pad_token == "<|endoftext|>"
        assert tok.eos_token == "<|im_end|>"
        assert tok.convert_tokens_to_ids("<|im_start|>") != tok.unk_token_id


def test_chat_template_marks_only_assistant_tokens() -> None:
    tok = build_tiny_tokenizer("a")
    enc = tok.apply_chat_template(
        MESSAGES, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    answer = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert answer == MESSAGES[1]["content"] + "<|im_end|>"
    prompt = tok.apply_chat_template(MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_tiny_models_match_vocab_and_run() -> None:
    tok = build_tiny_tokenizer("b")
    for arch in ("llama", "phi3"):
        model = build_tiny_model(arch, tok)
        assert model.config.vocab_size == len(tok)
        ids = tok("Hello there", return_tensors="pt")["input_ids"]
        logits = model(input_ids=ids).logits
        assert logits.shape == (1, ids.shape[1], len(tok))
        assert logits.dtype == torch.float32


def test_seed_controls_weights() -> None:
    tok = build_tiny_tokenizer("a")
    w0 = build_tiny_model("llama", tok, seed=0).lm_head.weight
    assert torch.equal(w0, build_tiny_model("llama", tok, seed=0).lm_head.weight)
    assert not torch.equal(w0, build_tiny_model("llama", tok, seed=1).lm_head.weight)
