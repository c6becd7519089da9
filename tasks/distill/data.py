"""Snapshot records: loading, hashing, and chat tokenization with assistant-only labels."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from storage.artifact_store import ArtifactMissingError, artifact_store
from tasks.distill.hashing import Messages, record_hash
from tasks.prepare.store import load_snapshot as read_snapshot

CORRECTION = "correction"  # the prepare stage's target_source of a user's correction


@dataclass(frozen=True)
class TrainRecord:
    """One training conversation, whether its answer is a correction, and its weight."""

    messages: Messages
    corrected: bool = False
    weight: float = 1.0  # the prepare stage's: 1 + low-confidence share, capped (else 1)


def _split_records(path: Path, split: str) -> list[TrainRecord]:
    data = load_snapshot(path, (split,))[split]
    # Snapshots written without a target_source column (older ones, tests) hold no corrections,
    # and those without a weight column (before weights existed) weigh 1 throughout.
    sources = data["target_source"] if "target_source" in data.column_names else None
    weights = data["weight"] if "weight" in data.column_names else None
    return [
        TrainRecord(
            check_messages(m),
            bool(sources and sources[i] == CORRECTION),
            float(weights[i]) if weights is not None and weights[i] is not None else 1.0,
        )
        for i, m in enumerate(data["messages"])
    ]


def load_snapshot(path: Path, splits: tuple[str, ...] = ("train",)) -> DatasetDict:
    """A snapshot saved with save_to_disk; checks the splits and the `messages` column."""
    path = Path(path)
    try:
        artifact_store().fetch(path)  # from the shared store when another host prepared it
    except ArtifactMissingError as exc:
        raise FileNotFoundError(f"snapshot {exc}") from None
    data = read_snapshot(path)  # the prepare stage's reader; here we only check what we need
    for split in splits:
        if split not in data:
            raise ValueError(f"snapshot {path} has no {split!r} split (has {list(data)})")
        if "messages" not in data[split].column_names:
            raise ValueError(f"snapshot {path} split {split!r} has no 'messages' column")
    return data


def check_messages(messages: Messages) -> Messages:
    """Plain role/content dicts ending with a non-empty assistant turn after a user turn."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        roles = [m["role"] for m in msgs]
        raise ValueError(f"a record must end with a user then an assistant turn, got roles {roles}")
    return msgs


def training_records(
    snapshot: Path,
    split: str,
    *,
    replay: list[Path],
    replay_fraction: float,
    seed: int,
    limit: int | None = None,
) -> list[TrainRecord]:
    """The split's records plus a seeded replay sample from older snapshots, deduplicated."""
    records = _split_records(snapshot, split)
    if limit is not None:
        records = records[:limit]
    seen = {record_hash(r.messages) for r in records}
    older: list[TrainRecord] = []
    for path in replay:
        for rec in _split_records(path, "train"):
            if (h := record_hash(rec.messages)) not in seen:
                seen.add(h)
                older.append(rec)
    n_replay = min(len(older), round(replay_fraction * len(records)))
    return oversample(records + random.Random(seed).sample(older, n_replay), seed)


def oversample(records: list[TrainRecord], seed: int) -> list[TrainRecord]:
    """Each record `weight` times in expectation: the whole part of its weight in copies, and
    one more when a seeded hash of the record falls below the fractional part.

    Weights become copies here, not factors in the loss: the loss has three paths (TRL's
    SFT loss, logit KD, cross-tokenizer KD), each normalized by the batch's target tokens,
    and the preference stage reads the snapshot apart. A copy reaches all of them alike,
    and the teacher cache still sends each distinct record through the teacher once. The
    draw depends on the record and the seed only, so a run is reproducible.
    """
    out: list[TrainRecord] = []
    for rec in records:
        whole = max(1, math.floor(rec.weight))
        fraction = rec.weight - math.floor(rec.weight) if rec.weight > 1 else 0.0
        if fraction > 0:
            key = f"oversample:{seed}:{record_hash(rec.messages)}".encode()
            draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
            whole += draw < fraction
        out += [rec] * whole
    return out


def prompt_ids(tok: PreTrainedTokenizerBase, messages: Messages) -> list[int]:
    """Token ids of everything before the final assistant answer, with the generation prompt."""
    enc = tok.apply_chat_template(
        messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=True
    )
    return list(cast(Any, enc)["input_ids"])


def tokenize_record(
    tok: PreTrainedTokenizerBase, messages: Messages, max_length: int
) -> dict[str, Any] | None:
    """input_ids and labels (-100 outside the final answer), truncated; None if no label is left."""
    prompt = prompt_ids(tok, messages)
    rendered = tok.apply_chat_template(messages, tokenize=True, return_dict=True)
    full = list(cast(Any, rendered)["input_ids"])
    if full[: len(prompt)] != prompt:
        raise ValueError("chat template renders the prompt differently once the answer follows")
    full = full[:max_length]
    labels = [-100] * min(len(prompt), len(full)) + full[len(prompt) :]
    if all(x == -100 for x in labels[1:]):
        return None
    return {"input_ids": full, "labels": labels}


def tokenize_records(
    tok: PreTrainedTokenizerBase, records: list[TrainRecord] | list[Messages], max_length: int
) -> tuple[Dataset, int]:
    """A Dataset of input_ids/labels/record_hash/corrected, and how many truncation emptied."""
    rows: dict[str, list[Any]] = {"input_ids": [], "labels": [], "record_hash": [], "corrected": []}
    dropped = 0
    for item in records:
        rec = item if isinstance(item, TrainRecord) else TrainRecord(item)
        row = tokenize_record(tok, rec.messages, max_length)
        if row is None:
            dropped += 1
            continue
        rows["input_ids"].append(row["input_ids"])
        rows["labels"].append(row["labels"])
        rows["record_hash"].append(record_hash(rec.messages))
        rows["corrected"].append(rec.corrected)
    return Dataset.from_dict(rows), dropped
