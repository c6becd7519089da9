"""Teacher signals through the cache: top-k log-probs per target token, or generated answers."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerBase

from tasks.distill.data import TrainRecord, prompt_ids, tokenize_record
from tasks.distill.hashing import record_hash
from tasks.distill.teacher_cache import TeacherCache
from tasks.distill.xtok import VocabMap, align, target_starts, xtok_columns
from tasks.models.batching import pad_batch
from tasks.models.decoding import greedy_answers
from tasks.progress import bar

log = logging.getLogger(__name__)


def target_mask(labels: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: positions whose next token is a target (the logits that predict labels)."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != -100
    return mask


@torch.no_grad()
def topk_of_batch(
    model: Any, batch: dict[str, torch.Tensor], k: int, temperature: float
) -> list[dict[str, torch.Tensor]]:
    """Per row: top-k ids/log-probs (at `temperature`) and tail mass at its target positions."""
    device = next(model.parameters()).device
    mask = target_mask(batch["labels"])
    # ids and attention mask, or a packed row's position ids and sequence bounds
    fwd = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items() if k != "labels"}
    logits = model(**fwd, logits_to_keep=mask.to(device), use_cache=False).logits
    # [N, V]: only the target positions, in batch order
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    top_lp, top_ids = logp.topk(k, dim=-1)
    tail = (1 - top_lp.exp().sum(-1)).clamp(min=0)
    out, start = [], 0
    for n in mask.sum(1).tolist():
        sl = slice(start, start + n)
        out.append({"ids": top_ids[sl].int(), "logprobs": top_lp[sl], "tail": tail[sl]})
        start += n
    return out


def _length_batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    # Sorting by length keeps padding (wasted teacher compute) small.
    ordered = sorted(rows, key=lambda r: len(r["input_ids"]))
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


def fill_topk_cache(
    cache: TeacherCache,
    data: Dataset,
    load_teacher: Any,
    *,
    k: int,
    temperature: float,
    batch_size: int,
    pad_id: int,
) -> int:
    """Send only records missing from the cache through the teacher; returns how many."""
    _, missing = cache.split(list(data["record_hash"]))
    if not missing:
        return 0
    # Select the missing rows by index: iterating every row would cost more than the teacher
    # saves on a mostly-cached cycle.
    first_index: dict[str, int] = {}
    for i, h in enumerate(data["record_hash"]):
        first_index.setdefault(h, i)
    rows = list(data.select([first_index[h] for h in missing]))
    cache.stats.computed += len(rows)
    with cache.stats.timed("load"):
        model = load_teacher()
    with bar(desc="teacher top-k", total=len(rows), unit="record") as shown:
        for batch_rows in _length_batches(rows, batch_size):
            with cache.stats.timed("teacher"):
                signals = topk_of_batch(model, pad_batch(batch_rows, pad_id), k, temperature)
            for row, sig in zip(batch_rows, signals, strict=True):
                cache.put(row["record_hash"], sig)
            shown.update(len(batch_rows))
    dropped = weakref.ref(model)
    del model  # the teacher's memory goes back before the student loads
    with cache.stats.timed("release"):
        release_teacher(dropped)
    log.info("teacher top-k: %d records computed, %d from cache", len(rows), cache.stats.hits)
    return len(rows)


def release_teacher(dropped: weakref.ref[Any]) -> None:
    """Free a dropped teacher's memory before the student loads, and its CUDA blocks too.

    On a 16 GB card the two do not fit together (tasks/models/memory_plan.py plans them as
    separate phases), and the caching allocator would keep the teacher's blocks reserved.
    Reference counting frees the teacher at `del`; a full garbage collection, which costs
    about 0.2 s with models and datasets in memory (most of a mostly-cached cycle's signal
    stage on a fast teacher), runs only when reference cycles kept it alive.
    """
    if dropped() is not None:
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def attach_topk(cache: TeacherCache, data: Dataset) -> Dataset:
    """Add t_ids / t_logprobs / t_tail columns from the cache, checking token counts match."""

    def add(row: dict[str, Any]) -> dict[str, Any]:
        tensors, _ = cache.get(row["record_hash"])
        n_targets = sum(1 for x in row["labels"][1:] if x != -100)
        if tensors["ids"].shape[0] != n_targets:
            raise ValueError(
                f"cached teacher signals for record {row['record_hash'][:12]} cover "
                f"{tensors['ids'].shape[0]} tokens but the record has {n_targets} targets"
            )
        return {
            "t_ids": tensors["ids"].tolist(),
            "t_logprobs": tensors["logprobs"].tolist(),
            "t_tail": tensors["tail"].tolist(),
        }

    return data.map(add, desc="attach teacher top-k")


XTOK_FILE = "xtok_vocab.safetensors"


def attach_aligned(
    cache: TeacherCache,
    data: Dataset,
    records: list[TrainRecord],
    t_tok: PreTrainedTokenizerBase,
    s_tok: PreTrainedTokenizerBase,
    vmap: VocabMap,
    max_length: int,
) -> Dataset:
    """Add t_pos / t_ids / t_logprobs / t_tail: the teacher's cached rows aligned to the student.

    A record the teacher's truncation emptied, or whose text cannot be located in a rendered
    template, gets no aligned row: it trains on cross-entropy alone.
    """
    by_hash = {record_hash(r.messages): r.messages for r in records}

    def add(row: dict[str, Any]) -> dict[str, Any]:
        messages = by_hash[row["record_hash"]]
        teacher_row = tokenize_record(t_tok, messages, max_length)
        if teacher_row is None or not cache.path(row["record_hash"]).is_file():
            return xtok_columns({}, ([], []), vmap)
        cached, _ = cache.get(row["record_hash"])
        t_starts = target_starts(t_tok, messages, teacher_row["input_ids"], teacher_row["labels"])
        if cached["ids"].shape[0] != len(t_starts):
            raise ValueError(
                f"cached teacher signals for record {row['record_hash'][:12]} cover "
                f"{cached['ids'].shape[0]} tokens but the teacher's tokenization has "
                f"{len(t_starts)} targets"
            )
        s_starts = target_starts(s_tok, messages, row["input_ids"], row["labels"])
        return xtok_columns(cached, align(s_starts, t_starts), vmap)

    return data.map(add, desc="align teacher top-k to the student's tokens")


def aligned_share(data: Dataset) -> float:
    """Share of the student's target tokens that have an aligned teacher row (the rest: CE)."""
    targets = sum(sum(1 for x in labels[1:] if x != -100) for labels in data["labels"])
    return sum(len(p) for p in data["t_pos"]) / max(targets, 1)


def save_vocab_map(prepared: Path, vmap: VocabMap) -> None:
    """The student's unshared-token mask and the KL weight, beside the prepared data."""
    save_file(
        {"student_unshared": vmap.student_unshared.contiguous()},
        str(Path(prepared) / XTOK_FILE),
        metadata={"matched_weight": str(vmap.shared_share), "shared": str(vmap.shared)},
    )


def load_vocab_map(prepared: Path) -> tuple[torch.Tensor, float] | None:
    """(student_unshared, matched_weight) saved by save_vocab_map, None for other strategies."""
    path = Path(prepared) / XTOK_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("student_unshared"), float((f.metadata() or {})["matched_weight"])


@torch.no_grad()
def generate_batch(
    model: Any,
    tok: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    max_new_tokens: int,
    batch_size: int | None = None,
) -> list[list[int]]:
    """Greedy answers to prompt ids, cut at EOS (tasks/models/decoding.py), in their order."""
    answers = greedy_answers(
        model,
        prompts,
        max_new_tokens=max_new_tokens,
        end_ids={tok.eos_token_id} - {None},
        pad_id=tok.pad_token_id,
        batch_size=batch_size or len(prompts),
        desc="teacher answers",
    )
    return [a.ids for a in answers]


def teacher_answers(
    cache: TeacherCache,
    records: list[Any],
    load_teacher: Any,
    tok: PreTrainedTokenizerBase,
    *,
    max_new_tokens: int,
    batch_size: int,
) -> list[Any]:
    """Records with the final answer replaced by the teacher's (cached by prompt).

    Takes messages or TrainRecords and returns the same kind. A TrainRecord whose answer is a
    user's correction keeps it: corrections are ground truth, and their prompts never reach
    the teacher.
    """
    wrapped = [r if isinstance(r, TrainRecord) else TrainRecord(r) for r in records]
    by_prompt = {record_hash(r.messages[:-1]): r.messages for r in wrapped if not r.corrected}
    _, missing = cache.split(list(by_prompt))
    cache.stats.computed += len(missing)
    if missing:
        with cache.stats.timed("load"):
            model = load_teacher()
        prompts = [prompt_ids(tok, by_prompt[h]) for h in missing]
        with cache.stats.timed("teacher"):
            answers = generate_batch(model, tok, prompts, max_new_tokens, batch_size)
        for h, ans in zip(missing, answers, strict=True):
            text = str(tok.decode(ans, skip_special_tokens=True)).strip()
            cache.put(h, {"ids": torch.tensor(ans, dtype=torch.int32)}, {"text": text})
        dropped = weakref.ref(model)
        del model
        with cache.stats.timed("release"):
            release_teacher(dropped)
    return answered_from_cache(cache, records)


def answered_from_cache(cache: TeacherCache, records: list[Any]) -> list[Any]:
    """`records` with each uncorrected answer replaced by the cached teacher answer."""
    out: list[Any] = []
    for original in records:
        rec = original if isinstance(original, TrainRecord) else TrainRecord(original)
        if rec.corrected:
            out.append(original)
            continue
        _, meta = cache.get(record_hash(rec.messages[:-1]))
        answered = [*rec.messages[:-1], {"role": "assistant", "content": meta["text"]}]
        out.append(TrainRecord(answered) if isinstance(original, TrainRecord) else answered)
    return out
