"""bench/distill.py (d): the teacher cost of a second cycle over a full recompute."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from _generation import emit, sync
from datasets import Dataset, concatenate_datasets

from tasks.distill.signals import fill_topk_cache
from tasks.distill.teacher_cache import TeacherCache


def bench_cache(root: Path, k: int) -> TeacherCache:
    """A top-k cache (temperature 2) under `root` for the bench's teacher."""
    return TeacherCache.open(
        kind="topk",
        teacher_id="bench",
        revision="0",
        tokenizer_hash="x",
        max_length=4096,
        k=k,
        temperature=2.0,
        root=root,
    )


def second_cycle_cost(
    teacher: Any, first: Dataset, new: Dataset, pad: int, batch: int, tmp: Path, device: str
) -> None:
    """(d) cycle 1 fills the cache with `first`; cycle 2 adds `new`; full = cycle 2 from scratch.

    Each pass gets its own copy of the teacher and drops it, as a cycle drops the teacher it
    loaded: the copy stands for the load (counted in load_s), and the release is what a cycle
    pays.
    """
    second = concatenate_datasets([first, new])
    timings = {}
    for label, cache_dir, rows in (
        ("cycle1", "c", first),
        ("cycle2", "c", second),
        ("full", "f", second),
    ):
        cache = bench_cache(tmp / cache_dir, k=16)
        sync(device)
        t = time.perf_counter()
        fill_topk_cache(
            cache,
            rows,
            lambda: copy.deepcopy(teacher),
            k=16,
            temperature=2.0,
            batch_size=batch,
            pad_id=pad,
        )
        sync(device)
        timings[label] = (time.perf_counter() - t, cache.stats.to_dict())
    emit(
        figure="d_second_cycle_teacher_cost_ratio",
        value=timings["cycle2"][0] / timings["full"][0],
        goal="<= 0.10",
        second_cycle_s=timings["cycle2"][0],
        full_recompute_s=timings["full"][0],
        second_cycle_cache=timings["cycle2"][1],
        records=len(second),
    )
