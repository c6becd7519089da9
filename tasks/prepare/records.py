"""Per-record steps: target choice, normalized hashes, dedupe, chat messages, split, group cap."""

from __future__ import annotations

import hashlib
import heapq
import unicodedata
from typing import Any

from tasks.prepare.config import PrepareConfig

# Splits are laid out test first on the hash line, so a larger test share grows the old test
# set instead of moving it; shrinking is handled by carrying earlier assignments forward.
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
SPLIT_NAMES = ("train", "validation", "test")
SPLIT_PRIORITY = {"test": 2, "validation": 1, "train": 0}  # an earlier test prompt stays test


def choose_target(
    response: str, correction: str | None, rating: int | None, config: PrepareConfig
) -> tuple[str, str | None, str | None]:
    """(kind, target, target_source|drop reason): kind is 'train', 'negative' or 'drop'.

    A user's correction beats the model's response whatever the rating; a well-rated (or,
    per config, unrated) response is trained on; a low-rated uncorrected one is a negative.
    """
    if isinstance(correction, str) and correction.strip():
        return "train", correction, "correction"
    if rating is None:
        return ("train", response, "response") if config.keep_unrated else ("drop", None, "unrated")
    if rating >= config.good_rating:
        return "train", response, "response"
    if rating <= config.low_rating:
        return "negative", response, "low_rating_no_correction"
    return "drop", None, "mediocre_rating"


def clean(text: str) -> str:
    """NFC-normalized and stripped: one spelling of a text in the dataset."""
    return (text if text.isascii() else unicodedata.normalize("NFC", text)).strip()


def normalize(text: str) -> str:
    """The comparison form: NFKC, case-folded, whitespace collapsed (ASCII takes a fast path)."""
    if text.isascii():
        return " ".join(text.lower().split())
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def hash_normalized(normalized: str) -> str:
    """The 128-bit hex hash of an already normalized text."""
    return hashlib.blake2b(normalized.encode("utf-8", "replace"), digest_size=16).hexdigest()


def prompt_hash(prompt: str) -> str:
    """A stable hex hash of the normalized prompt (split key, leakage key)."""
    return hash_normalized(normalize(prompt))


def pair_key(normalized_prompt: str, normalized_target: str) -> int:
    """A 64-bit key of a normalized (prompt, target) pair, for dedupe."""
    data = f"{normalized_prompt}\x1f{normalized_target}".encode("utf-8", "replace")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def hash_key(hex_hash: str) -> int:
    """The 64-bit integer prefix of a hex hash (compact set/dict keys)."""
    return int(hex_hash[:16], 16)


class Deduper:
    """Remembers 64-bit pair keys; `seen` is True from the second occurrence on."""

    def __init__(self) -> None:
        self._keys: set[int] = set()

    def seen(self, key: int) -> bool:
        """Record `key`; True when it was recorded before."""
        if key in self._keys:
            return True
        self._keys.add(key)
        return False


def to_messages(prompt: str, target: str, system_prompt: str | None) -> list[dict[str, str]]:
    """Chat turns so each student's own chat template can render the record."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    messages.append({"role": "assistant", "content": target})
    return messages


def natural_split(phash: str, config: PrepareConfig) -> str:
    """The split a prompt hash falls in under this config's ratios."""
    position = int(phash[:8], 16) / 2**32
    test_share = 1.0 - config.train_ratio - config.validation_ratio
    if position < test_share:
        return "test"
    if position < test_share + config.validation_ratio:
        return "validation"
    return "train"


def rank(record_id: str, seed: int, purpose: str) -> int:
    """A seeded 64-bit pseudo-random rank of a record (replay sample, group cap)."""
    data = f"{purpose}:{seed}:{record_id}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class GroupCap:
    """Per-group bounded heaps: keeps the `cap` lowest ranks of each group, deterministically."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self._heaps: dict[str, list[int]] = {}
        self.counts: dict[str, int] = {}

    def add(self, group: str, record_rank: int) -> None:
        """Offer a record's rank to its group."""
        self.counts[group] = self.counts.get(group, 0) + 1
        if self.cap is None:
            return
        heap = self._heaps.setdefault(group, [])
        if len(heap) < self.cap:
            heapq.heappush(heap, -record_rank)
        elif -heap[0] > record_rank:
            heapq.heapreplace(heap, -record_rank)

    def thresholds(self) -> dict[str, int]:
        """Highest kept rank per group (records ranked above it are capped away)."""
        if self.cap is None:
            return dict.fromkeys(self.counts, 2**64 - 1)
        return {group: -heap[0] for group, heap in self._heaps.items()}


def group_key(row: dict[str, Any], group_by: tuple[str, ...]) -> str:
    """The balancing group of a record, e.g. 'summarize|phi-3-mini'."""
    return "|".join(str(row.get(name) or "") for name in group_by)
