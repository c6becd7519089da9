"""Cross-tokenizer soft targets: shared tokens by surface bytes, char-offset alignment, the loss.

The teacher's top-k log-probabilities are computed once per record in the teacher's own
tokenization and chat template (the same per-record cache as same-vocabulary KD), then
aligned to the student's tokens here. The idea is TRL's GOLD (`trl.experimental.gold`):
positions where both tokenizations start a token at the same place in the answer are
compared, exactly (KL) on the tokens both vocabularies share and by sorted probabilities
(ULD, arXiv 2402.12030) on the rest. GOLD's own `ULDLoss` needs the teacher's full logits
at every training step (the teacher runs online) and byte offsets that TRL computes only for
ByteLevel tokenizers; here the teacher is a cache of top-k rows and SentencePiece
vocabularies (TinyLlama, Phi-3, Mistral) must work, so the pieces are written for that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tasks.distill.data import Messages

_EPS = 1e-8


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character → byte table, inverted (the ByteLevel alphabet)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _style(tok: PreTrainedTokenizerBase) -> str:
    """'bytelevel' (GPT-2 style), 'metaspace' (SentencePiece ▁ and <0xNN>) or 'plain'."""
    backend = getattr(tok, "backend_tokenizer", None)
    decoder = json.loads(backend.to_str()).get("decoder") if backend is not None else None
    text = json.dumps(decoder or {})
    if '"ByteLevel"' in text:
        return "bytelevel"
    if '"ByteFallback"' in text or '"Metaspace"' in text or "▁" in text:
        return "metaspace"
    return "plain"


def token_surfaces(tok: PreTrainedTokenizerBase) -> dict[bytes, int]:
    """Surface bytes → id for every ordinary token; special and added tokens are left out.

    GOLD matches tokens by their raw strings, which never matches across SentencePiece and
    byte-level BPE ("▁the" vs "Ġthe" are both b" the"); matching the bytes a token stands for
    does. The first id wins when two tokens decode to the same bytes (the map stays 1:1).
    """
    style, table = _style(tok), _byte_decoder()
    special = set(tok.all_special_tokens) | set(tok.get_added_vocab())
    out: dict[bytes, int] = {}
    for token, idx in sorted(tok.get_vocab().items(), key=lambda kv: kv[1]):
        if token in special:
            continue
        if style == "bytelevel" and all(ch in table for ch in token):
            surface = bytes(table[ch] for ch in token)
        elif style == "metaspace" and len(token) == 6 and token.startswith("<0x"):
            surface = bytes([int(token[3:5], 16)])
        else:
            surface = (token.replace("▁", " ") if style == "metaspace" else token).encode()
        out.setdefault(surface, idx)
    return out


@dataclass(frozen=True)
class VocabMap:
    """Teacher id → student id for shared tokens (-1 otherwise), and the student's unshared ids."""

    teacher_to_student: torch.Tensor  # [V_teacher] long
    student_unshared: torch.Tensor  # [V_student] bool: tokens the teacher has no counterpart for
    shared: int
    teacher_size: int
    student_size: int

    @property
    def shared_share(self) -> float:
        """Shared tokens as a share of the teacher's vocabulary (GOLD's adaptive KL weight)."""
        return self.shared / max(self.teacher_size, 1)


def vocab_map(teacher: PreTrainedTokenizerBase, student: PreTrainedTokenizerBase) -> VocabMap:
    """Match the two vocabularies by surface bytes."""
    t_surf, s_surf = token_surfaces(teacher), token_surfaces(student)
    t_size, s_size = len(teacher), len(student)
    t2s = torch.full((t_size,), -1, dtype=torch.long)
    unshared = torch.ones(s_size, dtype=torch.bool)
    for surface, t_id in t_surf.items():
        s_id = s_surf.get(surface)
        if s_id is not None and t_id < t_size and s_id < s_size:
            t2s[t_id] = s_id
            unshared[s_id] = False
    shared = int((t2s >= 0).sum())
    return VocabMap(t2s, unshared, shared, t_size, s_size)


def target_starts(
    tok: PreTrainedTokenizerBase, messages: Messages, input_ids: list[int], labels: list[int]
) -> list[int]:
    """Per target token: where it starts in the answer text (chars), -1 outside the answer.

    Template tokens around the answer (end of turn, newlines) and later pieces of one
    character split into bytes get -1: they have no counterpart in another tokenization.
    """
    n_targets = sum(1 for x in labels[1:] if x != -100)
    if not getattr(tok, "is_fast", False):
        return [-1] * n_targets  # a slow tokenizer gives no offsets: nothing can be aligned
    full = str(tok.apply_chat_template(messages, tokenize=False))
    prompt = str(tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True))
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    content = messages[-1]["content"]
    begin = full.find(content, len(prompt)) if full.startswith(prompt) else -1
    if begin < 0 or list(enc["input_ids"][: len(input_ids)]) != list(input_ids):
        return [-1] * n_targets
    starts, last = [], -1
    for pos in range(1, len(labels)):
        if labels[pos] == -100:
            continue
        start, end = enc["offset_mapping"][pos]
        rel = start - begin
        ok = 0 <= rel < len(content) and end > start and rel != last
        starts.append(rel if ok else -1)
        last = rel if ok else last
    return starts


def align(student_starts: list[int], teacher_starts: list[int]) -> tuple[list[int], list[int]]:
    """(student indices, teacher indices) of target tokens that start at the same character.

    These are the first tokens of the groups TRL's `ULDLoss._align_by_byte_offsets` forms: at
    such a point both models predict the next token after the same text. Its walk would pair
    byte-fallback pieces of one character wrongly (they share a span), so the starts are
    intersected here instead.
    """
    where = {c: i for i, c in enumerate(teacher_starts) if c >= 0}
    pairs = [(i, where[c]) for i, c in enumerate(student_starts) if c >= 0 and c in where]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def xtok_divergence(
    logits: torch.Tensor,
    t_sids: torch.Tensor,
    t_logprobs: torch.Tensor,
    student_unshared: torch.Tensor,
    *,
    temperature: float,
    matched_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per aligned row [P]: (KL on shared tokens + one rest bucket, ULD on unshared tokens).

    logits [P, V_s] at the aligned student positions; t_sids [P, k] the teacher's top-k as
    student ids (-1: no shared counterpart); t_logprobs [P, k] at `temperature`. The KL is exact
    on what the cache holds: shared top-k tokens, then everything else as one bucket. ULD
    compares the teacher's unshared top-k probabilities, sorted, with the student's k largest
    probabilities on its unshared tokens (the teacher's tail beyond k is unknown: both sides
    are cut at k). Weights: matched_weight · KL + (1 − matched_weight) · ULD, as GOLD mixes.
    """
    log_q = torch.log_softmax(logits.float() / temperature, dim=-1)
    p = t_logprobs.float().exp()
    shared = t_sids >= 0
    log_q_top = log_q.gather(-1, t_sids.clamp(min=0))
    p_top = torch.where(shared, p, torch.zeros_like(p))
    kl = torch.where(p_top > 0, p_top * (p_top.clamp(min=_EPS).log() - log_q_top), 0.0).sum(-1)
    rest_p = (1 - p_top.sum(-1)).clamp(min=0)
    q_top = torch.where(shared, log_q_top.exp(), torch.zeros_like(p)).sum(-1)
    log_rest_q = torch.log1p(-q_top.clamp(max=1 - 1e-6))
    kl = kl + torch.where(rest_p > 0, rest_p * (rest_p.clamp(min=_EPS).log() - log_rest_q), 0.0)
    k = t_sids.shape[-1]
    mask = student_unshared.to(logits.device)
    if mask.shape[0] < logits.shape[-1]:  # embedding rows beyond the tokenizer: unshared too
        mask = torch.cat([mask, mask.new_ones(logits.shape[-1] - mask.shape[0])])
    # Top-k in log space, then exp on k values: no second [P, V] probability tensor.
    log_q_un = log_q.masked_fill(~mask[: logits.shape[-1]], float("-inf"))
    q_sorted = log_q_un.topk(min(k, log_q_un.shape[-1]), dim=-1).values.exp()
    p_sorted = torch.where(shared, torch.zeros_like(p), p).sort(dim=-1, descending=True).values
    uld = (p_sorted[:, : q_sorted.shape[-1]] - q_sorted).abs().sum(-1)
    return matched_weight * kl, (1 - matched_weight) * uld


def xtok_columns(
    cached: dict[str, torch.Tensor], pairs: tuple[list[int], list[int]], vmap: VocabMap
) -> dict[str, Any]:
    """A student row's teacher columns: aligned positions and the teacher rows, in student ids."""
    s_idx, t_idx = pairs
    if not s_idx:
        return {"t_pos": [], "t_ids": [], "t_logprobs": [], "t_tail": []}
    rows = torch.tensor(t_idx)
    ids = cached["ids"][rows].long()
    # Ids past the tokenizer (padded embedding rows) name no token: no shared counterpart.
    mapped = vmap.teacher_to_student[ids.clamp(max=vmap.teacher_size - 1)]
    mapped = torch.where(ids < vmap.teacher_size, mapped, -1)
    return {
        "t_pos": s_idx,
        "t_ids": mapped.tolist(),
        "t_logprobs": cached["logprobs"][rows].tolist(),
        "t_tail": cached["tail"][rows].tolist(),
    }
