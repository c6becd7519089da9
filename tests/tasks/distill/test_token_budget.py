"""Batches filled to a token budget: every record once, within the budget, resumable."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset, load_from_disk

from tasks.distill.config import DistillConfig
from tasks.distill.memory import device_workload, plan_memory
from tasks.distill.packing import PackingPolicy
from tasks.distill.token_budget import TokenBudgetBatches, record_lengths
from tasks.distill.train import load_student, sft_args, train_student
from tasks.distill.trainer import DistillTrainer, KDCollator, KDSettings
from tasks.models.memory_plan import estimate
from tests.tasks.distill.test_packing import _prepared

# Lengths like a feedback snapshot's: mostly short chats, a few long answers.
_RNG = random.Random(7)
LENGTHS = [_RNG.choice([40, 60, 90, 150, 400]) for _ in range(300)]


PADDED, PACKED, BY_LENGTH = (PackingPolicy(b) for b in ("padded", "packed", "by_length"))
# SmolLM2-135M's width with sdpa: auto packs a batch only when that costs less than padding.
AUTO = PackingPolicy("auto", hidden_size=576)


def _slots(batch: list[int], lengths: list[int], packing: PackingPolicy) -> int:
    sizes = [lengths[i] for i in batch]
    return packing.slots(len(sizes), sum(sizes), max(sizes))


def _padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    return 1 - real / sum(_slots(b, lengths, PADDED) for b in batches)


@pytest.mark.parametrize("packing", [PADDED, PACKED, BY_LENGTH, AUTO], ids=lambda p: p.batching)
def test_every_record_trains_once_per_epoch_within_the_budget(packing: PackingPolicy) -> None:
    batches = TokenBudgetBatches(LENGTHS, 1200, packing, seed=3)
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        plan = list(batches)
        assert sorted(i for b in plan for i in b) == list(range(len(LENGTHS)))
        assert len(plan) == len(batches)
        for b in plan:
            assert _slots(b, LENGTHS, packing) <= 1200
    # Records per batch follow their lengths: many short ones, few long ones.
    sizes = {len(b) for b in batches}
    assert min(sizes) <= 3 and max(sizes) >= 7


def test_epochs_reorder_the_same_groups_and_the_seed_decides_them() -> None:
    one = TokenBudgetBatches(LENGTHS, 1000, PACKED, seed=1)
    again = TokenBudgetBatches(LENGTHS, 1000, PACKED, seed=1)
    other = TokenBudgetBatches(LENGTHS, 1000, PACKED, seed=2)
    assert list(one) == list(again)
    assert list(one) != list(other)
    first = list(one)
    one.set_epoch(1)
    second = list(one)
    assert second != first  # another order...
    assert sorted(map(tuple, second)) == sorted(map(tuple, first))  # ...of the same groups


def test_packing_fits_more_records_and_length_grouping_pads_less() -> None:
    padded = TokenBudgetBatches(LENGTHS, 1200, PADDED, seed=0)
    packed = TokenBudgetBatches(LENGTHS, 1200, PACKED, seed=0)
    auto = TokenBudgetBatches(LENGTHS, 1200, AUTO, seed=0)
    grouped = TokenBudgetBatches(LENGTHS, 1200, BY_LENGTH, seed=0)
    assert len(packed) < len(padded)  # no padding slots: fuller batches, fewer steps
    assert len(packed) <= len(auto) < len(padded)  # auto packs the batches worth packing
    assert len(grouped) < len(padded)
    assert _padding_share(grouped.groups, LENGTHS) < _padding_share(padded.groups, LENGTHS) / 2


def test_a_record_longer_than_the_budget_trains_alone_and_a_zero_budget_is_refused() -> None:
    batches = TokenBudgetBatches([10, 500, 10, 10], 100, PADDED, seed=0)
    assert [1] in batches.groups
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least 1"):
        TokenBudgetBatches([10], 0, PADDED)
    with pytest.raises(ValueError, match="batch_tokens must be at least 1"):
        DistillConfig(batch_tokens=0)


def test_lengths_come_from_arrow_in_the_dataset_s_order() -> None:
    data = Dataset.from_dict({"input_ids": [[1, 2, 3], [1], [4, 5]], "t": [[0.1], [0.2], [0.3]]})
    view = data.select([2, 0]).with_format("torch", columns=["t"], output_all_columns=True)
    assert record_lengths(view) == [2, 3]


@dataclass
class RecordingCollator:
    """KDCollator that keeps the record hashes of every batch it builds, in order."""

    inner: KDCollator
    batches: list[list[str]] = field(default_factory=list)

    @property
    def packing(self) -> PackingPolicy:
        return self.inner.packing

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        self.batches.append([e["record_hash"] for e in examples])
        return self.inner(examples)


def _trainer(tmp: Path, prepared: Path, config: DistillConfig) -> DistillTrainer:
    student = "tiny-llama-student"
    model, tok, _ = load_student(student, config, "cpu")
    return DistillTrainer(
        model=model,
        args=sft_args(config, student, tmp / "ckpt", "cpu"),
        train_dataset=load_from_disk(str(prepared))["train"],
        processing_class=tok,
        data_collator=RecordingCollator(KDCollator(tok.pad_token_id, PackingPolicy("padded"))),
        kd=KDSettings(top_k=4),
        batch_tokens=config.batch_tokens,
    )


def test_the_trainer_trains_the_budget_s_batches_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    prepared = _prepared(tmp_path, "tiny-llama-student")
    train = load_from_disk(str(prepared))["train"]
    lengths = record_lengths(train)
    budget = 2 * max(lengths)
    plan = [
        [train[i]["record_hash"] for i in b]
        for b in TokenBudgetBatches(lengths, budget, PADDED, seed=0)
    ]
    assert len(plan) >= 3 and len({len(b) for b in plan}) > 1  # batches of different counts

    config = DistillConfig(
        batch_tokens=budget, grad_accum=1, max_steps=2, save_steps=2, seed=0, device="cpu"
    )
    first = _trainer(tmp_path, prepared, config)
    assert first.train().global_step == 2
    # The loader reads one batch ahead of the step, so the collator may have built a third.
    assert first.data_collator.batches[:2] == plan[:2]

    resumed = _trainer(tmp_path, prepared, replace(config, max_steps=3))
    resumed.train(resume_from_checkpoint=str(tmp_path / "ckpt" / "checkpoint-2"))
    assert resumed.state.global_step == 3
    assert resumed.data_collator.batches[0] == plan[2]  # the two trained batches are skipped


def test_a_run_s_steps_follow_its_budget(tmp_path: Path) -> None:
    student = "tiny-llama-student"
    prepared = _prepared(tmp_path, student)
    lengths = record_lengths(load_from_disk(str(prepared))["train"])
    budget = 2 * max(lengths)
    config = DistillConfig(batch_tokens=budget, batching="padded", grad_accum=1, device="cpu")
    metrics = train_student(prepared, student=student, output_dir=tmp_path / "run", config=config)
    assert metrics["global_step"] == len(TokenBudgetBatches(lengths, budget, PADDED))
    # Padded, the whole set takes every record at the longest length: one batch holds it.
    everything = replace(config, batch_tokens=len(lengths) * max(lengths))
    metrics = train_student(
        prepared, student=student, output_dir=tmp_path / "all", config=everything
    )
    assert metrics["global_step"] == 1


def test_the_memory_plan_counts_a_budget_as_records_of_the_longest_length() -> None:
    pair = ("tiny-llama-teacher", "tiny-llama-student")
    config = DistillConfig(max_length=256, batch_tokens=1000, grad_accum=2, teacher_batch_size=1)
    work = device_workload(*pair, config, "cpu")
    assert work.batch == 4  # 1000 tokens: up to four records of 256 (rounded up)
    roomy = estimate(work, 0).peak
    same, line, _ = plan_memory(*pair, config, "cpu", roomy)
    assert same == config and "batch 1000 tokens × 2" in line
    tight = (
        estimate(replace(work, batch=2), 0).peak + estimate(replace(work, batch=3), 0).peak
    ) / 2
    smaller, line, _ = plan_memory(*pair, config, "cpu", tight)
    assert (smaller.batch_tokens, smaller.grad_accum) == (512, 4)  # two records, twice as often
    assert "training with batch 512 tokens × accumulation 4" in line


def test_each_epoch_the_trainer_takes_the_groups_in_that_epoch_s_order(tmp_path: Path) -> None:
    prepared = _prepared(tmp_path, "tiny-llama-student")
    train = load_from_disk(str(prepared))["train"]
    lengths = record_lengths(train)
    budget = 2 * max(lengths)
    batches = TokenBudgetBatches(lengths, budget, PADDED, seed=0)
    plan = []
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        plan += [[train[i]["record_hash"] for i in b] for b in batches]
    assert plan[: len(batches)] != plan[len(batches) :]  # the two epochs differ in order
    config = DistillConfig(batch_tokens=budget, grad_accum=1, num_train_epochs=2, device="cpu")
    trainer = _trainer(tmp_path, prepared, config)
    trainer.train()
    assert trainer.data_collator.batches == plan
