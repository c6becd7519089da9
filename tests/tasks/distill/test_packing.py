"""Packed (padding-free) batches train as padded ones do: the same loss and the same gradients."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from peft import get_peft_model

from tasks.distill.config import DistillConfig
from tasks.distill.engine import prepare_signals, run_preflight
from tasks.distill.packing import Batching, PackingPolicy
from tasks.distill.signals import load_vocab_map
from tasks.distill.train import sft_args, train_student
from tasks.distill.trainer import TEACHER_COLUMNS, DistillTrainer, KDCollator, KDSettings
from tasks.models.adapters import lora_config
from tasks.models.load import load_model_and_tokenizer
from tasks.models.presets import get_preset
from tests.tasks.distill.snapshots import seed_records

TEACHER = "tiny-llama-teacher"
# Same tokenizer as the teacher (logit KD) in two architectures, and another one (xtok).
STUDENTS = ["tiny-llama-student", "tiny-phi3-student", "tiny-llama-student-b"]


def _prepared(tmp: Path, student: str) -> Path:
    """Prepared rows of five records of different lengths; record 1 is a user's correction."""
    train = seed_records(5)
    train[1] = [train[1][0], {"role": "assistant", "content": "A user's longer correction " * 3}]
    sources = ["response", "correction", "response", "response", "response"]
    DatasetDict(
        {
            "train": Dataset.from_dict({"messages": train, "target_source": sources}),
            "validation": Dataset.from_dict(
                {"messages": seed_records(2, offset=150), "target_source": ["response"] * 2}
            ),
        }
    ).save_to_disk(str(tmp / "snap"))
    signals = prepare_signals(
        tmp / "snap",
        teacher=TEACHER,
        student=student,
        strategy=run_preflight(TEACHER, student).strategy,  # logit, or xtok for another vocab
        config=DistillConfig(max_length=256, top_k=4),
        work_dir=tmp / "w",
        cache_root=tmp,
    )
    return Path(signals["prepared_dir"])


def _loss_and_grads(
    student: str, rows: list[dict[str, Any]], kd: KDSettings, tmp: Path, *, packed: bool, **extra
) -> tuple[float, dict[str, torch.Tensor]]:
    """DistillTrainer.compute_loss on one batch of `rows`, and the LoRA gradients it gives."""
    torch.manual_seed(0)
    base, tok = load_model_and_tokenizer(student, device="cpu", for_training=True)
    model = get_peft_model(base, lora_config(get_preset(student)))
    for name, p in model.named_parameters():  # LoRA B starts at zero: give A a gradient too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    args = sft_args(DistillConfig(device="cpu"), student, tmp / f"ckpt-{packed}", "cpu")
    collator = KDCollator(tok.pad_token_id, PackingPolicy("packed" if packed else "padded"))
    trainer = DistillTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        data_collator=collator,
        kd=kd,
        **extra,
    )
    batch = collator(rows)
    if packed:  # one row, no padding, the records told apart by their positions
        assert batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
        assert "attention_mask" not in batch
    else:
        assert batch["attention_mask"].eq(0).any(), "the records must differ in length"
    model.eval()  # LoRA dropout off: its random masks would differ between the two layouts
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads
    return loss.item(), grads


def _assert_same(a: tuple[float, dict], b: tuple[float, dict]) -> None:
    assert a[0] == pytest.approx(b[0], rel=1e-5, abs=1e-6)
    assert a[1].keys() == b[1].keys()
    for name, grad in a[1].items():
        torch.testing.assert_close(grad, b[1][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("student", STUDENTS)
def test_packed_kd_batch_gives_the_padded_loss_and_gradients(tmp_path: Path, student: str) -> None:
    prepared = _prepared(tmp_path, student)
    rows = list(load_from_disk(str(prepared))["train"])
    assert [r["corrected"] for r in rows] == [False, True, False, False, False]
    assert "t_ids" in rows[0]  # logit or cross-tokenizer KD, not sequence KD
    kd = KDSettings(alpha=0.5, temperature=2.0, top_k=4, correction_alpha=1.0)
    if (aligned := load_vocab_map(prepared)) is not None:
        kd.student_unshared, kd.matched_weight = aligned
    padded = _loss_and_grads(student, rows, kd, tmp_path, packed=False)
    packed = _loss_and_grads(student, rows, kd, tmp_path, packed=True)
    _assert_same(padded, packed)
    # The correction's own weight reaches the right record: without it the loss moves.
    plain = [{**r, "corrected": False} for r in rows]
    assert _loss_and_grads(student, plain, kd, tmp_path, packed=True)[0] != pytest.approx(
        packed[0], rel=1e-4
    )


def test_packed_batches_match_padded_with_an_online_teacher_and_without_one(
    tmp_path: Path,
) -> None:
    student = "tiny-llama-student"
    prepared = _prepared(tmp_path, student)
    rows = [
        {k: v for k, v in r.items() if k not in TEACHER_COLUMNS}
        for r in load_from_disk(str(prepared))["train"]
    ]
    teacher, _ = load_model_and_tokenizer(TEACHER, device="cpu")
    kd = KDSettings(alpha=0.5, temperature=2.0, top_k=4)
    online = {"online_teacher": teacher}
    _assert_same(
        _loss_and_grads(student, rows, kd, tmp_path, packed=False, **online),
        _loss_and_grads(student, rows, kd, tmp_path, packed=True, **online),
    )
    sft_rows = [{k: v for k, v in r.items() if k != "corrected"} for r in rows]  # TRL's SFT loss
    _assert_same(
        _loss_and_grads(student, sft_rows, kd, tmp_path, packed=False),
        _loss_and_grads(student, sft_rows, kd, tmp_path, packed=True),
    )


def test_auto_packs_where_padding_costs_more_than_a_packed_row() -> None:
    student, _ = load_model_and_tokenizer("tiny-llama-student", device="cpu")
    sdpa = PackingPolicy.for_model("auto", student)
    assert (sdpa.hidden_size, sdpa.varlen) == (student.config.hidden_size, False)
    wide = PackingPolicy("auto", hidden_size=576)  # SmolLM2-135M's width, sdpa
    assert wide.packs([232, 80, 220, 126, 174])  # short records of mixed lengths
    assert not wide.packs([1024] * 16)  # nothing to save, and a quadratic mask to pay
    assert PackingPolicy("auto", hidden_size=576, varlen=True).packs([1024] * 16)
    assert not PackingPolicy("auto").packs([10, 300])  # width unknown: never quadratic
    assert PackingPolicy("packed").packs([1024] * 16)
    assert not PackingPolicy("padded").packs([1, 500])


@pytest.mark.parametrize("batching", ["packed", "by_length"])
def test_training_takes_the_batching_from_its_config(tmp_path: Path, batching: Batching) -> None:
    student = "tiny-llama-student"
    prepared = _prepared(tmp_path, student)
    config = DistillConfig(
        batching=batching, max_steps=2, per_device_batch_size=3, grad_accum=1, device="cpu"
    )
    args = sft_args(config, student, tmp_path / "ckpt", "cpu")
    grouped = "group_by_length" if batching == "by_length" else "random"
    assert args.train_sampling_strategy == grouped
    metrics = train_student(prepared, student=student, output_dir=tmp_path / "run", config=config)
    assert metrics["global_step"] == 2
    assert math.isfinite(metrics["train_loss"])
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
