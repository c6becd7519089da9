"""Training batches filled to a token budget instead of a fixed number of records."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow.compute as pc
from torch.utils.data import Sampler

from tasks.distill.packing import PackingPolicy

# Records sorted together by `by_length` batching: this many batches' worth at a time, as
# transformers' LengthGroupedSampler does (50 batches), so length grouping stays local and the
# order of the epoch stays random.
SORT_WINDOW_BATCHES = 50


def record_lengths(dataset: Any) -> list[int]:
    """Token count of each record of a tokenized dataset, read from Arrow without decoding rows."""
    return pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()


class TokenBudgetBatches(Sampler[list[int]]):
    """Batches of record indices, each as many records as fit `budget` token slots.

    A fixed record count gives a step of short records a few hundred tokens and a step of long
    ones thousands, so a GPU idles on the first and the memory plan must size for the second.
    A budget keeps every step's work, and its memory, about the same: short records train many
    at a time. A batch's slots are those of the layout the collator will give it (`packing`):
    its tokens when packed, its padding too when padded. A record longer than the budget
    trains alone.

    We write this sampler because the field's pieces do not fit: TRL's `pack_dataset` merges
    records into new rows, which loses the per-record teacher columns, and transformers'
    samplers yield a fixed number of records per batch.

    The records are grouped once, from the seed; each epoch trains the same groups in another
    order. Regrouping per epoch would change the number of batches between epochs, and the
    trainer counts an epoch's steps once: a resumed run must skip exactly the batches it
    already trained, so the count and the order are a pure function of the seed and epoch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        budget: int,
        packing: PackingPolicy,
        *,
        seed: int = 0,
    ) -> None:
        if budget < 1:
            raise ValueError(f"the token budget must be at least 1, got {budget}")
        self.lengths = list(lengths)
        self.budget = budget
        self.packing = packing
        self.seed = seed
        self.epoch = 0
        self.groups = self._groups(random.Random(seed))

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for `epoch` (the trainer calls this at each epoch's start)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.groups)))
        random.Random(f"{self.seed}/{self.epoch}").shuffle(order)
        return (list(self.groups[i]) for i in order)

    def __len__(self) -> int:
        return len(self.groups)

    def _groups(self, rng: random.Random) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        if self.packing.batching != "by_length":
            return self._fill(order)
        mean = max(1.0, sum(self.lengths) / max(1, len(self.lengths)))
        window = max(1, int(self.budget / mean)) * SORT_WINDOW_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: -self.lengths[i])
            batches.extend(self._fill(chunk))
        return batches

    def _fill(self, order: list[int]) -> list[list[int]]:
        """Greedy: each record joins the open batch unless that would exceed the budget."""
        batches: list[list[int]] = []
        batch: list[int] = []
        total = longest = 0
        for i in order:
            size = self.lengths[i]
            grown = self.packing.slots(len(batch) + 1, total + size, max(longest, size))
            if batch and grown > self.budget:
                batches.append(batch)
                batch, total, longest = [], 0, 0
            batch.append(i)
            total, longest = total + size, max(longest, size)
        if batch:
            batches.append(batch)
        return batches
