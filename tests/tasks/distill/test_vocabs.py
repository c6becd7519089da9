"""Preflight on llama.cpp's real vocabularies of the seed models, and the CLI that prints it."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from tasks.distill.vocabs import (
    MISTRAL_V3,
    PRESET_VOCABS,
    pair_report,
    preset_tokenizer,
    vocab_tokenizer,
)
from tasks.distill.xtok import vocab_map


def test_sentencepiece_and_byte_level_tokens_meet_by_their_bytes() -> None:
    spm, phi3 = vocab_tokenizer("llama-spm"), vocab_tokenizer("phi-3")
    vmap = vocab_map(phi3, spm)
    # Phi-3 is Llama-2's SentencePiece plus chat tokens: every ordinary token is shared.
    assert vmap.shared > 0.99 * (len(spm) - 3)
    assert int(vmap.teacher_to_student[phi3.convert_tokens_to_ids("▁the")]) == (
        spm.convert_tokens_to_ids("▁the")
    )
    byte_token = spm.convert_tokens_to_ids("<0x0A>")  # a newline as a byte-fallback piece
    assert not bool(vmap.student_unshared[byte_token])


def test_a_pair_with_a_real_vocabulary_gets_soft_targets() -> None:
    report = pair_report("phi-3-mini-4k-instruct", "tinyllama-1.1b-chat")
    assert report.strategy == "xtok"
    assert report.student_source == "llama.cpp ggml-vocab-llama-spm.gguf"
    assert (report.teacher_vocab, report.student_vocab) == (32064, 32000)
    assert "chat templates differ" in report.reason


def test_mistral_pair_gets_soft_targets_from_mistral_commons_vocabulary() -> None:
    report = pair_report("mistral-7b-instruct-v0.3", "tinyllama-1.1b-chat")
    assert report.strategy == "xtok" and report.teacher_source.startswith("mistral-common")
    assert report.teacher_vocab == 32768  # Mistral-7B-v0.3's extended vocabulary
    mistral = vocab_tokenizer(MISTRAL_V3)
    assert mistral.convert_tokens_to_ids(["[INST]", "[/INST]"]) == [3, 4]  # as v0.3's ids
    assert mistral("Hello world")["input_ids"] == [1, 23325, 2294]


def test_a_preset_without_a_known_vocabulary_waits_for_its_tokenizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(PRESET_VOCABS, "mistral-7b-instruct-v0.3", None)
    preset_tokenizer.cache_clear()
    try:
        report = pair_report("mistral-7b-instruct-v0.3", "tinyllama-1.1b-chat")
    finally:
        preset_tokenizer.cache_clear()
    assert report.strategy == "pending" and report.shared_tokens is None
    assert "decided when its tokenizer loads" in report.reason


def test_cli_prints_the_pair(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["preflight", "--teacher", "phi-3-mini-4k-instruct", "--student", "tinyllama-1.1b-chat"]
    assert main([*argv, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["strategy"] == "xtok" and row["shared_tokens"] > 30000
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| phi-3-mini-4k-instruct | tinyllama-1.1b-chat | 32064/32000 |" in out
    assert main([*argv, "--strategy", "logit"]) == 2
    assert "✗ cannot force logit distillation" in capsys.readouterr().err
    assert main(["preflight", "--teacher", "phi-3-mini-4k-instruct"]) == 2
    assert "give --teacher T --student S, or --seed-pairs" in capsys.readouterr().err
    assert main(["preflight", "--seed-pairs", "--student", "tinyllama-1.1b-chat"]) == 2
    assert "or --seed-pairs" in capsys.readouterr().err


def test_sentencepiece_answer_aligns_with_a_byte_level_one() -> None:
    from tasks.distill.data import tokenize_record
    from tasks.distill.xtok import align, target_starts
    from tasks.models.tiny import CHATML_TEMPLATE, build_tiny_tokenizer

    spm, bpe = vocab_tokenizer("llama-spm"), build_tiny_tokenizer("a")
    spm.chat_template = CHATML_TEMPLATE  # the vocabulary file carries no template
    answer = "The café costs €5, and the capital of France is Paris."
    messages = [{"role": "user", "content": "Where?"}, {"role": "assistant", "content": answer}]
    starts = {}
    for name, tok in (("spm", spm), ("bpe", bpe)):
        row = tokenize_record(tok, messages, 256)
        starts[name] = target_starts(tok, messages, row["input_ids"], row["labels"])
    s_idx, t_idx = align(starts["spm"], starts["bpe"])
    words = [i for i, ch in enumerate(answer) if ch == " " or i == 0]
    common = {starts["spm"][i] for i in s_idx}
    assert common >= {0, len(answer) - len("Paris.") - 1}  # the first word and " Paris"
    assert len(common) >= len(words) // 2  # word starts mostly meet despite ▁ vs Ġ
    assert all(starts["spm"][i] == starts["bpe"][j] for i, j in zip(s_idx, t_idx, strict=True))
