"""Pair preflight: identical tokenizers → logit KD; different ones → cross-tokenizer logit KD."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase


class StrategyError(ValueError):
    """A forced strategy the teacher/student pair cannot support."""


@dataclass(frozen=True)
class PreflightResult:
    """The chosen strategy, why, and what differs between the two tokenizers."""

    strategy: str  # "logit" | "xtok" | "sequence"
    reason: str
    same_vocab: bool
    same_special_tokens: bool
    same_chat_template: bool
    differences: list[str] = field(default_factory=list)
    shared_tokens: int = 0  # ordinary tokens both vocabularies have (same surface bytes)
    shared_share: float = 0.0  # shared_tokens / teacher vocabulary size

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def _specials(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    named = {k: str(v) for k, v in tok.special_tokens_map.items()}
    added = dict(tok.get_added_vocab())
    return {"named": named, "added": added}


def tokenizer_fingerprint(tok: PreTrainedTokenizerBase) -> str:
    """sha256 over the token→id map, special tokens and chat template (cache key part)."""
    payload = {
        "vocab": sorted(tok.get_vocab().items()),
        "specials": _specials(tok),
        "chat_template": tok.chat_template or "",
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _vocab_differences(t: dict[str, int], s: dict[str, int]) -> list[str]:
    if t == s:
        return []
    only_t = len(set(t) - set(s))
    only_s = len(set(s) - set(t))
    moved = sum(1 for k in set(t) & set(s) if t[k] != s[k])
    return [
        f"token→id maps differ: teacher {len(t)} tokens, student {len(s)}; "
        f"{only_t} only in teacher, {only_s} only in student, {moved} shared tokens with other ids"
    ]


def compare_tokenizers(
    teacher: PreTrainedTokenizerBase, student: PreTrainedTokenizerBase
) -> tuple[bool, bool, bool, list[str]]:
    """(same vocab, same special tokens, same chat template, human-readable differences)."""
    diffs = _vocab_differences(teacher.get_vocab(), student.get_vocab())
    same_vocab = not diffs
    t_sp, s_sp = _specials(teacher), _specials(student)
    same_special = t_sp == s_sp
    if not same_special:
        diffs.append(f"special tokens differ: teacher {t_sp['named']} vs student {s_sp['named']}")
    same_template = (teacher.chat_template or "") == (student.chat_template or "")
    if not same_template:
        diffs.append("chat templates differ")
    return same_vocab, same_special, same_template, diffs


def can_align(tok: PreTrainedTokenizerBase) -> bool:
    """Cross-tokenizer KD needs character offsets, which only fast tokenizers give."""
    return bool(getattr(tok, "is_fast", False))


def preflight(
    teacher: PreTrainedTokenizerBase,
    student: PreTrainedTokenizerBase,
    *,
    requested: str = "auto",
    teacher_name: str = "teacher",
    student_name: str = "student",
) -> PreflightResult:
    """Logit KD for identical tokenizers; cross-tokenizer logit KD (xtok) for different ones.

    Sequence-level KD (teacher answers) is left for pairs that cannot be aligned (a tokenizer
    without offsets), or when forced.
    """
    from tasks.distill.xtok import vocab_map

    same_vocab, same_special, same_template, diffs = compare_tokenizers(teacher, student)
    identical = same_vocab and same_special and same_template
    vmap = vocab_map(teacher, student)
    pair = f"{teacher_name} → {student_name}"
    share = f"{vmap.shared} of {vmap.teacher_size} teacher tokens ({vmap.shared_share:.1%}) shared"
    alignable = can_align(teacher) and can_align(student)
    if requested not in ("auto", "logit", "xtok", "sequence"):
        raise StrategyError(f"strategy must be auto, logit, xtok or sequence, got {requested!r}")
    if requested == "logit" and not identical:
        raise StrategyError(
            f"cannot force logit distillation for {pair}: the tokenizers differ "
            f"({'; '.join(diffs)}); teacher log-probabilities would index other tokens. "
            "Use strategy 'xtok' (cross-tokenizer), 'sequence' or 'auto'."
        )
    if requested == "xtok" and not alignable:
        raise StrategyError(
            f"cannot force cross-tokenizer distillation for {pair}: a tokenizer gives no "
            "character offsets (not a fast tokenizer). Use strategy 'sequence' or 'auto'."
        )
    how = "chosen automatically" if requested == "auto" else "forced by the user"
    if requested == "sequence":
        strategy, reason = "sequence", f"sequence-level KD forced by the user for {pair}"
        if identical:
            reason += " (logit KD would be possible: tokenizers are identical)"
    elif identical and requested != "xtok":
        strategy = "logit"
        reason = (
            f"logit KD {how} for {pair}: identical token→id maps "
            f"({len(teacher.get_vocab())} tokens), special tokens and chat template"
        )
    elif alignable:
        strategy = "xtok"
        reason = (
            f"cross-tokenizer logit KD {how} for {pair}: {share}; exact KL on shared tokens, "
            "sorted-probability matching (ULD) on the rest; " + "; ".join(diffs or ["identical"])
        )
    else:
        strategy = "sequence"
        reason = f"sequence-level KD for {pair}: tokens cannot be aligned; " + "; ".join(diffs)
    return PreflightResult(
        strategy,
        reason,
        same_vocab,
        same_special,
        same_template,
        diffs,
        vmap.shared,
        round(vmap.shared_share, 6),
    )
