"""llama.cpp is the judge: every student × quantization loads, tokenizes like the reference,
renders the chat template like HF, agrees with transformers on next-token logits, generates.

llama.cpp is probed once per session in a child process (tasks/export/llama_cpp.py), so a
build that faults on this CPU skips these tests with the reason instead of killing pytest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tasks.export import Skipped, llama_cpp_missing_reason, quantize
from tasks.export.llama_cpp import LlamaCppModel, llama_cpp_crash_reason
from tests.tasks.export.conftest import PARITY_TEXTS, QUANTS, STUDENT_VOCABS

MISSING = llama_cpp_missing_reason()
CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Sort these words: banana, apple, cherry."},
    {"role": "assistant", "content": "apple, banana, cherry"},
    {"role": "user", "content": "Thanks! Now in reverse?"},
]
# F16: logits may move by this much relative to the largest |logit| (fp16 rounding only).
F16_MAX_REL_DELTA = 0.02
# Overall top-1 floors on random tiny models (near-ties are common there; the decisive
# positions must all agree). The real SmolLM2 student's Q8_0 is checked in test_smollm2_slow.
MIN_TOP1 = {"F16": 0.99, "Q8_0": 0.95}


@pytest.fixture(scope="session")
def judge(exported: dict) -> None:
    """Skip with the reason when llama.cpp is missing or crashes on a real file."""
    reason = llama_cpp_crash_reason(exported["tiny-smollm2-like", "F16"])
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def hf_logits(student_dirs: dict) -> dict[str, list[tuple[list[int], np.ndarray]]]:
    """Per student: (token ids, transformers' logits) for each fixed prompt."""
    out = {}
    for name, hf_dir in student_dirs.items():
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        rows = []
        for text in PARITY_TEXTS:
            ids = tokenizer(text)["input_ids"]  # with BOS where the tokenizer adds one
            with torch.no_grad():
                rows.append((ids, model(torch.tensor([ids])).logits[0].numpy()))
        out[name] = rows
    return out


@pytest.fixture(scope="module")
def loaded(exported: dict, judge: None):  # type: ignore[no-untyped-def]
    """One llama.cpp model per file, closed at the end of the module."""
    models: dict[tuple[str, str], LlamaCppModel] = {}

    def get(name: str, quant: str) -> LlamaCppModel:
        if (name, quant) not in models:
            models[name, quant] = LlamaCppModel(exported[name, quant], n_ctx=256)
        return models[name, quant]

    yield get
    for model in models.values():
        model.close()


CASES = [(name, quant) for name in STUDENT_VOCABS for quant in QUANTS]


@pytest.mark.parametrize(("name", "quant"), CASES)
def test_loads_with_the_students_metadata(name: str, quant: str, loaded) -> None:  # type: ignore[no-untyped-def]
    meta = loaded(name, quant).metadata
    assert meta["general.name"] == f"{name}-student" and meta["general.version"] == "v3"
    assert int(meta["general.file_type"]) == {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q4_K_M": 15}[quant]


@pytest.mark.parametrize(("name", "quant"), [c for c in CASES if STUDENT_VOCABS[c[0]]])
def test_tokenizes_the_reference_strings_like_llama_cpp_and_hf(  # type: ignore[no-untyped-def]
    name: str, quant: str, loaded, student_dirs: dict, llama_cpp_src
) -> None:
    model = loaded(name, quant)
    hf = AutoTokenizer.from_pretrained(student_dirs[name])
    pairs = llama_cpp_src.reference_tokenization(STUDENT_VOCABS[name])
    assert len(pairs) > 30
    for text, reference in pairs:
        assert model.tokenize(text) == reference, repr(text)
    # transformers 5 rebuilds SentencePiece tokenizers so that a leading space is dropped
    # (15 of 47 reference strings); llama.cpp and sentencepiece itself keep it. Everything
    # else must match HF exactly, and only strings starting with whitespace may differ.
    differ = [t for t, ref in pairs if hf(t, add_special_tokens=False)["input_ids"] != ref]
    if STUDENT_VOCABS[name] == "llama-bpe":
        assert differ == []
    else:
        assert all(t[:1].isspace() for t in differ), differ
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(
            model_file=str(student_dirs[name] / "tokenizer.model")
        )
        assert all(sp.encode(t) == ref for t, ref in pairs)


@pytest.mark.parametrize(("name", "quant"), CASES)
def test_whole_string_detokenization_equals_the_base_files(  # type: ignore[no-untyped-def]
    name: str, quant: str, loaded, student_dirs: dict, llama_cpp_src
) -> None:
    """llama.cpp gives back what the real model's own file gives back (its vocabulary GGUF);
    the SmolLM2-like student has no base file, so HF's decoding is the reference there."""
    model = loaded(name, quant)
    texts = ["test ' s .", "Hello world, it's 2024!", "  two  spaces\n\nnew line", "Äpfel ½ 🦙"]
    vocab = STUDENT_VOCABS[name]
    if vocab is None:
        hf = AutoTokenizer.from_pretrained(student_dirs[name])
        for text in texts:
            ids = model.tokenize(text)
            assert model.detokenize(ids) == hf.decode(ids) == text, repr(text)
        return
    base = LlamaCppModel(llama_cpp_src.vocab(vocab), vocab_only=True)
    try:
        texts += [t for t, _ in llama_cpp_src.reference_tokenization(vocab)]
        for text in texts:
            ids = base.tokenize(text)
            assert model.detokenize(ids) == base.detokenize(ids), repr(text)
    finally:
        base.close()


@pytest.mark.parametrize("name", list(STUDENT_VOCABS))
def test_chat_template_in_the_file_renders_like_hf(  # type: ignore[no-untyped-def]
    name: str, loaded, student_dirs: dict
) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = loaded(name, "Q4_K_M")
    hf = AutoTokenizer.from_pretrained(student_dirs[name])
    meta = model.metadata
    formatter = Jinja2ChatFormatter(
        template=meta["tokenizer.chat_template"],
        bos_token=hf.bos_token or "",
        eos_token=hf.eos_token or "",
    )
    messages = CHAT if name != "tiny-tinyllama-1.1b" else CHAT[1:]
    rendered = formatter(messages=messages).prompt
    expected = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == expected


def logit_agreement(model: LlamaCppModel, rows: list) -> dict[str, float]:  # type: ignore[type-arg]
    """Top-1 agreement with transformers overall and where the choice is decisive, and the
    largest logit difference relative to the largest logit.

    A position is decisive when HF's top-1 leads its runner-up by more than twice the
    largest logit difference there: no rounding of that size can flip it, so a flip is a bug.
    Random tiny models have near-ties a real model rarely has; those are not decisive.
    """
    same = total = decisive = decisive_same = 0
    worst = 0.0
    for ids, reference in rows:
        logits = model.logits(ids)
        assert logits.shape == reference.shape
        delta = np.abs(logits - reference).max(axis=1)
        top2 = np.sort(reference, axis=1)[:, -2:]
        firm = (top2[:, 1] - top2[:, 0]) > 2 * delta
        agree = logits.argmax(1) == reference.argmax(1)
        same, total = same + int(agree.sum()), total + len(ids)
        decisive, decisive_same = decisive + int(firm.sum()), decisive_same + int(agree[firm].sum())
        worst = max(worst, float(delta.max() / np.abs(reference).max()))
    return {
        "top1": same / total,
        "decisive_top1": decisive_same / max(decisive, 1),
        "decisive_share": decisive / total,
        "max_rel_delta": worst,
    }


@pytest.mark.parametrize(("name", "quant"), CASES)
def test_next_token_logits_agree_with_transformers(  # type: ignore[no-untyped-def]
    name: str, quant: str, loaded, hf_logits: dict
) -> None:
    figures = logit_agreement(loaded(name, quant), hf_logits[name])
    if quant in MIN_TOP1:
        assert figures["decisive_top1"] == 1.0, figures
        assert figures["top1"] >= MIN_TOP1[quant], figures
    if quant == "F16":
        assert figures["max_rel_delta"] < F16_MAX_REL_DELTA and figures["decisive_share"] > 0.8
    else:  # 4-bit: still the same model, far from chance (1 / vocabulary)
        assert figures["top1"] >= 0.5, figures


@pytest.mark.parametrize(("name", "quant"), CASES)
def test_generates_greedily_from_the_files_own_logits(name: str, quant: str, loaded) -> None:  # type: ignore[no-untyped-def]
    """generate() is greedy decoding of this file: each new token is the argmax of llama.cpp's
    next-token logits after the prompt and the tokens before it, and the text is theirs.

    Checked while the choice is decisive (top-1 ahead by more than 1e-3 of the largest logit):
    a near-tie may flip between one-token and batched evaluation without anything being wrong.
    """
    model = loaded(name, quant)
    prompt = "The capital of France is"
    n_tokens, text = model.generate(prompt, max_tokens=4)
    assert 1 <= n_tokens <= 4
    context = model.tokenize(prompt, add_bos=True, special=True)
    chosen: list[int] = []
    for _ in range(n_tokens):
        last = model.logits(context + chosen)[-1]
        runner_up, best = np.sort(last)[-2:]
        if best - runner_up <= 1e-3 * np.abs(last).max():
            break
        chosen.append(int(last.argmax()))
    assert chosen, "the first generated token was a near-tie: nothing decisive to compare"
    assert (model.detokenize(context) + text).startswith(model.detokenize(context + chosen))


@pytest.mark.skipif(MISSING is None, reason="llama_cpp is installed: the quantizer runs instead")
def test_quantize_without_llama_cpp_is_a_reason_not_an_error(tmp_path: Path) -> None:
    result = quantize(tmp_path / "in-F16.gguf", tmp_path / "out.gguf", "Q4_K_M")
    assert isinstance(result, Skipped) and result.quantization == "Q4_K_M"
    assert "llama-cpp-python" in result.reason
    assert not (tmp_path / "out.gguf").exists()


def test_a_crashing_library_becomes_a_reason(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A child that dies by a signal (as on SIGILL) gives a reason; the caller lives on."""
    import tasks.export.llama_cpp as lc

    monkeypatch.setattr(lc, "_probe_results", {})
    monkeypatch.setattr(lc, "_PROBE", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    monkeypatch.setattr(lc, "llama_cpp_missing_reason", lambda: None)
    reason = lc.llama_cpp_crash_reason(tmp_path / "any.gguf")
    assert reason is not None and "signal 4" in reason and "Illegal instruction" in reason


@pytest.mark.skipif(llama_cpp_missing_reason() is not None, reason="needs llama-cpp-python")
def test_llama_cpp_warnings_stay_off_stderr_while_quiet(capsys) -> None:  # type: ignore[no-untyped-def]
    """The callback llama-cpp-python installs prints a ggml WARN with verbose=False; not here."""
    from llama_cpp._logger import llama_log_callback, set_verbose

    from tasks.export.llama_cpp import llama_warnings_quiet

    ggml_warn = 3  # GGML_LOG_LEVEL_WARN in ggml.h (NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4)
    set_verbose(False)  # what Llama(verbose=False) leaves behind
    llama_log_callback(ggml_warn, b"warned outside\n", None)
    with llama_warnings_quiet():
        llama_log_callback(ggml_warn, b"warned inside\n", None)
    llama_log_callback(ggml_warn, b"warned after\n", None)
    err = capsys.readouterr().err
    # The first line is the upstream mis-mapping this works around: once it stops printing,
    # llama_warnings_quiet can go.
    assert "warned outside" in err and "warned after" in err
    assert "warned inside" not in err
