"""A user's correction is ground truth: never replaced by a teacher answer or outweighed by it."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset, DatasetDict, load_from_disk

from tasks.distill.config import DistillConfig
from tasks.distill.data import record_hash, training_records
from tasks.distill.engine import prepare_signals
from tasks.distill.loss import kd_loss
from tasks.distill.trainer import KDSettings
from tasks.models.load import load_tokenizer
from tests.tasks.distill.snapshots import seed_records

CORRECTION = "Paris is the capital of France, and the answer is Paris."


def _snapshot(path: Path, n: int = 4) -> tuple[Path, list[list[dict[str, str]]]]:
    """Record 0's answer is a user's correction; the others are the model's own responses."""
    train = seed_records(n)
    train[0] = [train[0][0], {"role": "assistant", "content": CORRECTION}]
    sources = ["correction"] + ["response"] * (n - 1)
    val = seed_records(2, offset=150)
    DatasetDict(
        {
            "train": Dataset.from_dict({"messages": train, "target_source": sources}),
            "validation": Dataset.from_dict(
                {"messages": val, "target_source": ["response"] * len(val)}
            ),
        }
    ).save_to_disk(str(path))
    return path, train


def _answers(prepared: Path, student: str) -> dict[str, str]:
    """record hash -> the text the student is trained to produce."""
    tok = load_tokenizer(student)
    data = load_from_disk(str(prepared))["train"]
    out = {}
    for row in data:
        target = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
        out[row["record_hash"]] = tok.decode(target, skip_special_tokens=True).strip()
    return out


def test_sequence_kd_keeps_the_correction_and_replaces_only_the_rest(tmp_path: Path) -> None:
    snap, train = _snapshot(tmp_path / "snap")
    records = training_records(snap, "train", replay=[], replay_fraction=0.0, seed=0)
    assert [r.corrected for r in records] == [True, False, False, False]
    cfg = DistillConfig(max_length=256, gen_max_new_tokens=8)
    pair = {"teacher": "tiny-llama-teacher", "student": "tiny-llama-student-b"}
    signals = prepare_signals(
        snap, **pair, strategy="sequence", config=cfg, work_dir=tmp_path / "w", cache_root=tmp_path
    )
    # The corrected prompt never reaches the teacher; the three others do.
    assert signals["teacher_cache"]["computed"] == 3
    data = load_from_disk(signals["prepared_dir"])["train"]
    assert data["corrected"] == [True, False, False, False]
    trained_on = list(_answers(Path(signals["prepared_dir"]), pair["student"]).values())
    assert trained_on[0] == CORRECTION
    for got, original in zip(trained_on[1:], train[1:], strict=True):
        assert got != original[1]["content"]  # replaced by the teacher's (random) answer


def test_logit_kd_attaches_teacher_rows_to_corrections_too(tmp_path: Path) -> None:
    snap, train = _snapshot(tmp_path / "snap", n=3)
    cfg = DistillConfig(max_length=256, top_k=4)
    pair = {"teacher": "tiny-llama-teacher", "student": "tiny-llama-student"}
    signals = prepare_signals(
        snap, **pair, strategy="logit", config=cfg, work_dir=tmp_path / "w", cache_root=tmp_path
    )
    answers = _answers(Path(signals["prepared_dir"]), pair["student"])
    assert answers[record_hash(train[0])] == CORRECTION
    assert load_from_disk(signals["prepared_dir"])["train"]["corrected"] == [True, False, False]


def test_corrected_tokens_ignore_the_teacher_under_the_default_mix() -> None:
    torch.manual_seed(0)
    n, v, k = 6, 20, 4
    logits, targets = torch.randn(n, v), torch.randint(0, v, (n,))
    ids = torch.stack([torch.randperm(v)[:k] for _ in range(n)])
    lp = torch.log_softmax(torch.randn(n, k), -1) - 0.1
    tail = 1 - lp.exp().sum(-1)
    rows = torch.tensor([0, 0, 0, 1, 1, 1])  # tokens 0-2 belong to a corrected record
    settings = KDSettings(alpha=0.3, correction_alpha=DistillConfig().correction_alpha)
    alpha = settings.token_alpha(torch.tensor([True, False]), rows)

    def loss(teacher_lp: torch.Tensor) -> float:
        return kd_loss(logits, targets, ids, teacher_lp, tail, alpha=alpha, temperature=2.0)[0]

    base = loss(lp)
    other = lp.clone()
    other[:3] = torch.log_softmax(torch.randn(3, k), -1) - 0.1  # a different teacher opinion
    assert torch.allclose(loss(other), base)  # ... on the correction changes nothing
    other = lp.clone()
    other[3:] = torch.log_softmax(torch.randn(3, k), -1) - 0.1
    assert not torch.allclose(loss(other), base)  # ... on a response does
    ce = torch.nn.functional.cross_entropy(logits[:3], targets[:3], reduction="sum")
    only_teacher = kd_loss(
        logits[:3], targets[:3], ids[:3], lp[:3], tail[:3], alpha=alpha[:3], temperature=2.0
    )[0]
    assert torch.allclose(only_teacher * 3, ce)
