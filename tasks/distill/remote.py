"""Teacher signals from a remote teacher, into the same incremental cache as a local teacher."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from tasks.distill.data import TrainRecord
from tasks.distill.hashing import record_hash
from tasks.distill.preflight import PreflightResult, StrategyError, preflight
from tasks.distill.remote_client import ChatAnswer, RemoteClient, RemoteTeacherError
from tasks.distill.signals import answered_from_cache
from tasks.distill.teacher_cache import TeacherCache
from tasks.models.remote import RemoteTeacher

log = logging.getLogger(__name__)


def remote_preflight(
    teacher: RemoteTeacher,
    t_tok: PreTrainedTokenizerBase | None,
    s_tok: PreTrainedTokenizerBase,
    requested: str,
    student_name: str,
) -> PreflightResult:
    """Logit strategies need vLLM's prompt log-probs and the teacher's tokenizer; else sequence."""
    pair = f"{teacher.name} (remote {teacher.server}) → {student_name}"
    missing = []
    if not teacher.has_prompt_logprobs:
        missing.append(f"a {teacher.server} server gives no prompt log-probs (only vLLM does)")
    if t_tok is None:
        missing.append("the preset names no local tokenizer for the served model")
    if missing and requested in ("logit", "xtok"):
        raise StrategyError(
            f"cannot use {requested} distillation for {pair}: {'; '.join(missing)}. "
            "Use strategy 'sequence' or 'auto'."
        )
    if t_tok is not None:
        local = preflight(
            t_tok,
            s_tok,
            requested="sequence" if missing else requested,
            teacher_name=teacher.name,
            student_name=student_name,
        )
        if not missing:
            return dataclasses.replace(local, reason=f"{local.reason} (remote vLLM teacher)")
        base = local
    else:
        base = PreflightResult("sequence", "", False, False, False)
    how = "forced by the user" if requested == "sequence" else "chosen automatically"
    reason = f"sequence-level KD {how} for {pair}: answers by chat completions"
    if missing:
        reason += "; no logit signals: " + "; ".join(missing)
    return dataclasses.replace(base, strategy="sequence", reason=reason)


def remote_cache_key(
    teacher: RemoteTeacher, t_tok: PreTrainedTokenizerBase | None, root: Any
) -> dict[str, Any]:
    """The cache key parts a local teacher takes from its preset, for a served model."""
    from tasks.distill.preflight import tokenizer_fingerprint

    return {
        "teacher_id": teacher.cache_id,
        "revision": teacher.revision,
        "root": root,
        # Without a local tokenizer the server applies its own chat template to the messages.
        "tokenizer_hash": tokenizer_fingerprint(t_tok) if t_tok else f"server:{teacher.server}",
    }


def remote_answers(
    cache: TeacherCache, records: list[Any], client: RemoteClient, *, max_new_tokens: int
) -> list[Any]:
    """Like signals.teacher_answers, with answers by chat completions (cached by prompt).

    Each answer is written to the cache as it arrives, so a cycle cut short keeps what it got.
    """
    wrapped = [r if isinstance(r, TrainRecord) else TrainRecord(r) for r in records]
    by_prompt = {record_hash(r.messages[:-1]): r.messages for r in wrapped if not r.corrected}
    _, missing = cache.split(list(by_prompt))
    cache.stats.computed += len(missing)
    if missing:
        teacher = client.teacher

        def store(i: int, answer: ChatAnswer) -> None:
            meta = {
                "text": answer.text.strip(),
                "source": f"remote:{teacher.base_url}",
                "model": answer.model,
                "finish_reason": answer.finish_reason,
            }
            # No token ids come back from chat completions: the text is the signal.
            cache.put(missing[i], {"ids": torch.zeros(0, dtype=torch.int32)}, meta)

        log.info("remote teacher %s: %d answers to fetch", teacher.name, len(missing))
        with cache.stats.timed_teacher():
            client.chat([by_prompt[h][:-1] for h in missing], max_new_tokens, store)
    return answered_from_cache(cache, records)


def topk_from_prompt_logprobs(
    entries: list[Any], labels: list[int], k: int, temperature: float, vocab_size: int
) -> dict[str, torch.Tensor]:
    """Cache tensors (ids, logprobs, tail) from vLLM prompt_logprobs at the target positions.

    vLLM's entry j holds the top log-probs for token j given tokens < j, i.e. what the local
    teacher's logits at position j-1 give; the targets are the tokens j >= 1 with a label.
    The server returns temperature-1 log-probs of the top k only. At T != 1 the tail's shape
    is unknown, so it is taken as flat over the other tokens, which bounds its tempered mass
    from above for T > 1 (power-mean inequality); at T = 1 the values are exact.
    """
    ids, logprobs, tails = [], [], []
    for j in range(1, len(labels)):
        if labels[j] == -100:
            continue
        entry = entries[j] or {}
        ranked = sorted(
            (
                (int(tid), float(v["logprob"] if isinstance(v, dict) else v))
                for tid, v in entry.items()
            ),
            key=lambda p: -p[1],
        )[:k]
        if len(ranked) < k:
            raise RemoteTeacherError(
                f"prompt_logprobs at token {j} hold {len(ranked)} alternatives, "
                f"fewer than top_k {k}"
            )
        lp = torch.tensor([v for _, v in ranked], dtype=torch.float64)
        tail1 = max(0.0, 1.0 - float(lp.exp().sum()))
        scaled = lp / temperature
        rest = max(vocab_size - k, 1)
        tail_t = rest * (tail1 / rest) ** (1.0 / temperature) if tail1 > 0 else 0.0
        log_z = math.log(float(scaled.exp().sum()) + tail_t)
        ids.append([tid for tid, _ in ranked])
        logprobs.append((scaled - log_z).tolist())
        tails.append(tail_t / math.exp(log_z))
    return {
        "ids": torch.tensor(ids, dtype=torch.int32).reshape(-1, k),
        "logprobs": torch.tensor(logprobs, dtype=torch.float32).reshape(-1, k),
        "tail": torch.tensor(tails, dtype=torch.float32),
    }


def fill_topk_remote(
    cache: TeacherCache,
    data: Dataset,
    client: RemoteClient,
    *,
    k: int,
    temperature: float,
    vocab_size: int,
) -> int:
    """Like signals.fill_topk_cache: only records missing from the cache go to the server."""
    if k > client.teacher.max_logprobs:
        raise StrategyError(
            f"top_k {k} exceeds remote teacher {client.teacher.name}'s max_logprobs "
            f"{client.teacher.max_logprobs}: lower top_k or start vLLM with a larger --max-logprobs"
        )
    _, missing = cache.split(list(data["record_hash"]))
    if not missing:
        return 0
    first_index: dict[str, int] = {}
    for i, h in enumerate(data["record_hash"]):
        first_index.setdefault(h, i)
    rows = list(data.select([first_index[h] for h in missing]))
    cache.stats.computed += len(rows)

    def store(i: int, entries: list[Any]) -> None:
        row = rows[i]
        cache.put(
            row["record_hash"],
            topk_from_prompt_logprobs(entries, row["labels"], k, temperature, vocab_size),
            {"source": f"remote:{client.teacher.base_url}"},
        )

    with cache.stats.timed_teacher():
        client.prompt_logprobs([r["input_ids"] for r in rows], k, store)
    log.info(
        "remote teacher top-k: %d records computed, %d from cache", len(rows), cache.stats.hits
    )
    return len(rows)
