"""Teacher signals are computed once per record: a new cycle sends only new records."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tasks.distill.config import DistillConfig
from tasks.distill.data import tokenize_records
from tasks.distill.engine import prepare_signals
from tasks.distill.signals import fill_topk_cache, topk_of_batch
from tasks.distill.teacher_cache import TeacherCache
from tasks.models.batching import pad_batch
from tasks.models.load import load_model_and_tokenizer, load_tokenizer
from tests.tasks.distill.snapshots import save_snapshot, seed_records

PAIR = {"teacher": "tiny-llama-teacher", "student": "tiny-llama-student"}


def _entries(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*.safetensors")}


def test_second_cycle_sends_only_new_records_through_teacher(tmp_path: Path) -> None:
    cfg = DistillConfig(top_k=6, max_length=512, teacher_batch_size=4)
    old, new = seed_records(20), seed_records(2, offset=20)
    val = seed_records(2, offset=150)
    cache = tmp_path / "cache"
    first = prepare_signals(
        save_snapshot(tmp_path / "s1", old, val),
        **PAIR,
        strategy="logit",
        config=cfg,
        work_dir=tmp_path / "w1",
        cache_root=cache,
    )
    assert first["dropped_records"] == 0
    counts = {k: first["teacher_cache"][k] for k in ("hits", "misses", "computed", "hit_rate")}
    assert counts == {"hits": 0, "misses": 20, "computed": 20, "hit_rate": 0}
    # Where the stage's time went: every part ran, the teacher on 20 records the longest.
    spent = first["teacher_cache"]
    assert spent["lookup_s"] > 0 and spent["write_s"] > 0
    assert spent["teacher_s"] > spent["lookup_s"]
    before = _entries(cache)
    second = prepare_signals(
        save_snapshot(tmp_path / "s2", old + new, val),
        **PAIR,
        strategy="logit",
        config=cfg,
        work_dir=tmp_path / "w2",
        cache_root=cache,
    )
    stats = second["teacher_cache"]
    assert (stats["hits"], stats["misses"], stats["computed"]) == (20, 2, 2)
    after = _entries(cache)
    assert len(after) == 22
    assert all(after[p] == t for p, t in before.items())  # old entries were not rewritten
    # Another k is another cache namespace: everything is computed again.
    third = prepare_signals(
        save_snapshot(tmp_path / "s3", new, val),
        **PAIR,
        strategy="logit",
        config=DistillConfig(top_k=3, max_length=512),
        work_dir=tmp_path / "w3",
        cache_root=cache,
    )
    assert third["teacher_cache"]["misses"] == 2


def test_cached_signals_equal_a_fresh_teacher_pass(tmp_path: Path) -> None:
    cfg = DistillConfig(top_k=5, temperature=1.5, max_length=512)
    out = prepare_signals(
        save_snapshot(tmp_path / "s", seed_records(3), seed_records(1, 150)),
        **PAIR,
        strategy="logit",
        config=cfg,
        work_dir=tmp_path / "w",
        cache_root=tmp_path / "cache",
    )
    from datasets import load_from_disk

    row = load_from_disk(out["prepared_dir"])["train"][0]
    teacher, tok = load_model_and_tokenizer("tiny-llama-teacher", device="cpu")
    fresh = topk_of_batch(teacher, pad_batch([row], tok.pad_token_id), k=5, temperature=1.5)[0]
    assert torch.equal(fresh["ids"].long(), torch.tensor(row["t_ids"]))
    assert torch.allclose(fresh["logprobs"], torch.tensor(row["t_logprobs"]), atol=1e-5)
    total = torch.tensor(row["t_logprobs"]).exp().sum(-1) + torch.tensor(row["t_tail"])
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)


def test_generated_answers_are_cached_by_prompt(tmp_path: Path) -> None:
    cfg = DistillConfig(gen_max_new_tokens=6, gen_batch_size=4, max_length=512)
    pair = {"teacher": "tiny-llama-teacher", "student": "tiny-llama-student-b"}
    old, new = seed_records(10), seed_records(1, offset=10)
    val = seed_records(1, offset=150)
    cache = tmp_path / "cache"
    prepare_signals(
        save_snapshot(tmp_path / "s1", old, val),
        **pair,
        strategy="sequence",
        config=cfg,
        work_dir=tmp_path / "w1",
        cache_root=cache,
    )
    second = prepare_signals(
        save_snapshot(tmp_path / "s2", old + new, val),
        **pair,
        strategy="sequence",
        config=cfg,
        work_dir=tmp_path / "w2",
        cache_root=cache,
    )
    assert second["teacher_cache"]["computed"] == 1
    assert second["teacher_cache"]["hits"] == 10
    ns = TeacherCache(cache, {}).root
    assert sum(1 for _ in ns.rglob("*.safetensors")) == 11


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """Every full garbage collection while the test runs (automatic ones switched off)."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(1)

    gc.disable()
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.enable()


def _fill(tmp_path: Path, load_teacher: Callable[[], Any]) -> TeacherCache:
    tok = load_tokenizer(PAIR["teacher"])
    data, _ = tokenize_records(tok, seed_records(3), max_length=256)
    cache = TeacherCache.open(
        kind="topk", teacher_id="t", revision="0", tokenizer_hash="x", max_length=256,
        root=tmp_path, k=4, temperature=1.0,
    )  # fmt: skip
    fill_topk_cache(
        cache, data, load_teacher, k=4, temperature=1.0, batch_size=2, pad_id=tok.pad_token_id
    )
    return cache


def test_a_dropped_teacher_is_freed_without_a_full_collection(
    tmp_path: Path, full_collections: list[int]
) -> None:
    loaded: list[weakref.ref[Any]] = []

    def load() -> Any:
        model, _ = load_model_and_tokenizer(PAIR["teacher"], device="cpu")
        loaded.append(weakref.ref(model))
        return model

    cache = _fill(tmp_path, load)
    assert cache.stats.computed == 3
    assert loaded and loaded[0]() is None  # freed by reference counting at `del`
    assert full_collections == []


def test_a_teacher_held_by_a_reference_cycle_is_collected(
    tmp_path: Path, full_collections: list[int]
) -> None:
    loaded: list[weakref.ref[Any]] = []

    def load() -> Any:
        model, _ = load_model_and_tokenizer(PAIR["teacher"], device="cpu")
        model.__dict__["_cycle"] = [model]  # only the garbage collector can free this
        loaded.append(weakref.ref(model))
        return model

    _fill(tmp_path, load)
    assert loaded[0]() is None
    assert full_collections == [1]
