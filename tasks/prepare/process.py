"""Pass one, the ordered part: dedupe, split, group-cap ranks, staging to disk, statistics."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.prepare.columns import NEGATIVE_FEATURES, STAGED_SCHEMA, StreamWriter
from tasks.prepare.config import SPLITS, PrepareConfig
from tasks.prepare.examine import Examined
from tasks.prepare.records import (
    Deduper,
    GroupCap,
    group_key,
    hash_key,
    natural_split,
    rank,
    to_messages,
)


class FirstPass:
    """Takes examined rows in seq order into staged per-split files and a negatives file.

    `carried` maps 64-bit prompt-hash keys to the split earlier snapshots gave them, so a
    prompt keeps its split (test above all) whatever the current ratios say.
    """

    def __init__(self, config: PrepareConfig, workdir: Path, carried: dict[int, str]) -> None:
        self.config = config
        self.carried = carried
        self.dropped: Counter[str] = Counter()
        self.pii: Counter[str] = Counter()
        self.selected = 0
        self.forced = 0
        self.evaluate_only = 0  # rows whose consent kept them out of training
        self.members = hashlib.sha256()  # over member ids in order: part of the fingerprint
        self.overrides = hashlib.sha256()  # carried splits that differ from the natural one
        self.dedupe = Deduper()
        self.caps = GroupCap(config.group_cap)
        self.staged = {
            s: StreamWriter(workdir / f"staged-{s}.arrow", STAGED_SCHEMA) for s in SPLITS
        }
        self.negatives = StreamWriter(workdir / "negatives.arrow", NEGATIVE_FEATURES.arrow_schema)

    def take(self, record_id: str, result: Examined | str) -> None:
        """Account for one selected row: its id and what `examine` made of it."""
        self.selected += 1
        self.members.update(record_id.encode() + b"\n")
        if isinstance(result, str):
            self.dropped[result] += 1
        elif self.dedupe.seen(result.pair_key):
            self.dropped["duplicate"] += 1
        else:
            self._stage(result)

    def _stage(self, ex: Examined) -> None:
        cfg = self.config
        split = self._split(ex.prompt_hash)
        if ex.consent == "evaluate":
            self.evaluate_only += 1
            if split == "train":  # its user allowed quality checks only: held out instead
                split = "test"
        row: dict[str, Any] = {
            "id": ex.record_id,
            "messages": to_messages(ex.prompt, ex.target, cfg.system_prompt),
            "prompt": ex.prompt,
            "category": ex.category,
            "model_name": ex.model_name,
            "model_version": ex.model_version,
            "prompt_hash": ex.prompt_hash,
            "rating": ex.rating,
        }
        if ex.kind == "negative":
            self.dropped[ex.source] += 1  # dropped from training, kept as a negative
            self.negatives.add({**row, "rejected": ex.target, "split": split})
            return
        group = group_key(row, cfg.group_by)
        record_rank = rank(ex.record_id, cfg.seed, "cap")
        self.caps.add(group, record_rank)
        row.update(target=ex.target, target_source=ex.source, _group=group, _rank=record_rank)
        row.update(
            corrected_response=ex.corrected_response,
            corrected_by=ex.corrected_by,
            weight=ex.weight,
        )
        self.staged[split].add(row)

    def _split(self, phash: str) -> str:
        natural = natural_split(phash, self.config)
        carried = self.carried.get(hash_key(phash))
        if carried is None or carried == natural:
            return natural
        self.forced += 1
        self.overrides.update(f"{phash}:{carried}\n".encode())
        return carried

    def close(self) -> None:
        """Flush and close every staged file."""
        for writer in (*self.staged.values(), self.negatives):
            writer.close()

    def stats(self) -> dict[str, Any]:
        """What pass one saw: selections, drops by reason, PII by kind, negatives, forced splits."""
        return {
            "selected": self.selected,
            "dropped": dict(sorted(self.dropped.items())),
            "pii": dict(sorted(self.pii.items())),
            "negatives": self.negatives.rows,
            "kept_before_cap": sum(w.rows for w in self.staged.values()),
            "forced_split": self.forced,
            "consent_evaluate_only": self.evaluate_only,
            "groups": dict(sorted(self.caps.counts.items())),
        }
