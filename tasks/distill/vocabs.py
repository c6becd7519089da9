"""Tokenizers for pair preflight: the preset's own, else llama.cpp's real vocabulary of it.

The seed models' weights are not on this machine, but llama.cpp ships their vocabularies as
`ggml-vocab-*.gguf` files (tasks/models/llama_cpp_source.py); transformers builds a tokenizer
from such a file. Building one takes seconds (Llama-3's ~16 s), so the result is saved once
under the cache directory and loaded from there afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import product
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from tasks.models import mistral_vocab
from tasks.models.llama_cpp_source import LLAMA_CPP_PYTHON_VERSION, cache_dir, llama_cpp_source

log = logging.getLogger(__name__)

# Preset → a real vocabulary with the same tokens: llama.cpp's ggml-vocab-<name>.gguf, or
# for Mistral-7B-v0.3 (which llama.cpp does not ship) the v3 model of mistral-common.
MISTRAL_V3 = "mistral-v3"
PRESET_VOCABS: dict[str, str | None] = {
    "llama-3.1-8b-instruct": "llama-bpe",
    "llama-3.2-1b-instruct": "llama-bpe",
    "tinyllama-1.1b-chat": "llama-spm",
    "phi-3-mini-4k-instruct": "phi-3",
    "qwen2.5-7b-instruct": "qwen2",
    "mistral-7b-instruct-v0.3": MISTRAL_V3,
}
SEED_TEACHERS = ("mistral-7b-instruct-v0.3", "qwen2.5-7b-instruct", "llama-3.1-8b-instruct")
SEED_STUDENTS = ("phi-3-mini-4k-instruct", "llama-3.2-1b-instruct", "tinyllama-1.1b-chat")


class TokenizerUnavailable(RuntimeError):
    """Neither the preset's tokenizer nor a real vocabulary of it can be loaded here."""


def vocab_source(name: str) -> str:
    """Where vocabulary `name` comes from, as the preflight report shows it."""
    return mistral_vocab.SOURCE if name == MISTRAL_V3 else f"llama.cpp ggml-vocab-{name}.gguf"


def vocab_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """A tokenizer built from a real vocabulary (see PRESET_VOCABS), converted once and cached."""
    saved = cache_dir() / "tokenizers" / f"{name}-llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"
    if name == MISTRAL_V3:
        try:
            saved = mistral_vocab.mistral_v3_tokenizer_dir()
        except mistral_vocab.MistralVocabUnavailable as exc:
            raise TokenizerUnavailable(str(exc)) from exc
    elif not (saved / "tokenizer.json").is_file():
        path = llama_cpp_source().vocab(name)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        saved.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(saved))
    tok = AutoTokenizer.from_pretrained(str(saved))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@lru_cache(maxsize=8)
def preset_tokenizer(preset: str) -> tuple[PreTrainedTokenizerBase, str]:
    """(tokenizer, where it came from): the preset's own when loadable, else its real vocab."""
    from tasks.models.load import load_tokenizer

    try:
        return load_tokenizer(preset), "preset"
    except Exception as exc:  # offline Hub, gated repo, missing files: try the vocabulary
        own_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    vocab = PRESET_VOCABS.get(preset)
    if vocab is None:
        raise TokenizerUnavailable(
            f"{preset}: its tokenizer does not load here ({own_error}) and no real "
            "vocabulary of it is known; the pair is decided when its tokenizer loads"
        )
    return vocab_tokenizer(vocab), vocab_source(vocab)


@dataclass(frozen=True)
class PairReport:
    """One teacher/student pair: tokenizer sources, vocab sizes, shared tokens, the strategy."""

    teacher: str
    student: str
    strategy: str  # logit | xtok | sequence | pending
    shared_tokens: int | None
    shared_share: float | None
    teacher_vocab: int | None
    student_vocab: int | None
    teacher_source: str
    student_source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def pair_report(teacher: str, student: str, requested: str = "auto") -> PairReport:
    """Preflight of a pair on the best tokenizers available here."""
    from tasks.distill.preflight import preflight

    loaded: dict[str, tuple[PreTrainedTokenizerBase, str]] = {}
    for role, name in (("teacher", teacher), ("student", student)):
        try:
            loaded[role] = preset_tokenizer(name)
        except TokenizerUnavailable as exc:
            sources = [
                loaded[r][1] if r in loaded else "unavailable" for r in ("teacher", "student")
            ]
            return PairReport(
                teacher,
                student,
                "pending",
                None,
                None,
                None,
                None,
                sources[0],
                sources[1],
                str(exc),
            )
    (t_tok, t_src), (s_tok, s_src) = loaded["teacher"], loaded["student"]
    result = preflight(
        t_tok, s_tok, requested=requested, teacher_name=teacher, student_name=student
    )
    return PairReport(
        teacher,
        student,
        result.strategy,
        result.shared_tokens,
        result.shared_share,
        len(t_tok),
        len(s_tok),
        t_src,
        s_src,
        result.reason,
    )


def seed_pairs() -> list[tuple[str, str]]:
    """The seed's 9 teacher/student pairs."""
    return list(product(SEED_TEACHERS, SEED_STUDENTS))


def report_table(reports: list[PairReport]) -> str:
    """A markdown table of pair reports."""
    head = (
        "| teacher | student | vocab T/S | shared tokens | of teacher's | of student's | strategy |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in reports:
        if r.shared_tokens is None or not r.teacher_vocab or not r.student_vocab:
            cells = ["—"] * 4
        else:
            cells = [
                f"{r.teacher_vocab}/{r.student_vocab}",
                str(r.shared_tokens),
                f"{r.shared_tokens / r.teacher_vocab:.1%}",
                f"{r.shared_tokens / r.student_vocab:.1%}",
            ]
        lines.append(f"| {r.teacher} | {r.student} | {' | '.join(cells)} | {r.strategy} |")
    return "\n".join(lines)
