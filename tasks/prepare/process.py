"""Pass one over the selected rows: filter, scrub, choose target, dedupe, split, stage to disk."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.prepare.columns import NEGATIVE_FEATURES, STAGED_SCHEMA, StreamWriter
from tasks.prepare.config import SPLITS, PrepareConfig
from tasks.prepare.pii import scrub_pii
from tasks.prepare.quality import check_rating, check_text
from tasks.prepare.records import (
    SPLIT_NAMES,
    Deduper,
    GroupCap,
    choose_target,
    clean,
    group_key,
    hash_key,
    hash_normalized,
    natural_split,
    normalize,
    pair_key,
    rank,
    to_messages,
)


class FirstPass:
    """Streams rows to staged per-split files and a negatives file, counting every decision.

    `carried` maps 64-bit prompt-hash keys to the split earlier snapshots gave them, so a
    prompt keeps its split (test above all) whatever the current ratios say.
    """

    def __init__(self, config: PrepareConfig, workdir: Path, carried: dict[int, str]) -> None:
        self.config = config
        self.carried = carried
        self.dropped: Counter[str] = Counter()
        self.pii: dict[str, int] = {}
        self.selected = 0
        self.forced = 0
        self.members = hashlib.sha256()  # over member ids in order: part of the fingerprint
        self.overrides = hashlib.sha256()  # carried splits that differ from the natural one
        self.dedupe = Deduper()
        self.caps = GroupCap(config.group_cap)
        self.staged = {
            s: StreamWriter(workdir / f"staged-{s}.arrow", STAGED_SCHEMA) for s in SPLITS
        }
        self.negatives = StreamWriter(workdir / "negatives.arrow", NEGATIVE_FEATURES.arrow_schema)

    def feed(self, row: Any) -> None:
        """Decide one interaction row (seq, id, model_name, ..., category)."""
        record_id = str(row.id)
        self.selected += 1
        self.members.update(record_id.encode() + b"\n")
        reason = self._process(record_id, row)
        if reason:
            self.dropped[reason] += 1

    def _process(self, record_id: str, row: Any) -> str | None:
        cfg = self.config
        if reason := check_rating(row.rating):
            return reason
        kind, target, source = choose_target(row.response, row.correction, row.rating, cfg)
        if kind == "drop":
            return source
        reason = check_text(row.prompt, min_chars=cfg.min_chars, max_chars=cfg.max_prompt_chars)
        reason = reason or check_text(
            target, min_chars=cfg.min_chars, max_chars=cfg.max_target_chars
        )
        if reason:
            return reason
        prompt = scrub_pii(clean(row.prompt), self.pii)
        target = scrub_pii(clean(target), self.pii)
        normalized_prompt = normalize(prompt)
        key = pair_key(normalized_prompt, normalize(target)) ^ (kind == "negative")
        if self.dedupe.seen(key):  # negatives flip the low bit: deduped apart from targets
            return "duplicate"
        phash = hash_normalized(normalized_prompt)
        split = self._split(phash)
        common = {
            "id": record_id,
            "messages": to_messages(prompt, target, cfg.system_prompt),
            "prompt": prompt,
            "category": row.category,
            "model_name": row.model_name,
            "model_version": row.model_version,
            "prompt_hash": phash,
            "rating": row.rating,
        }
        if kind == "negative":
            self.negatives.add({**common, "rejected": target, "split": split})
            return source  # counted as dropped from training, kept as a negative
        group = group_key(common, cfg.group_by)
        record_rank = rank(record_id, cfg.seed, "cap")
        self.caps.add(group, record_rank)
        common.update(target=target, target_source=source, _group=group, _rank=record_rank)
        self.staged[split].add(common)
        return None

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
            "groups": dict(sorted(self.caps.counts.items())),
        }


__all__ = ["FirstPass", "SPLIT_NAMES"]
