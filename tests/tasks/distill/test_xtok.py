"""Cross-tokenizer logit KD on tiny random models with different vocabularies."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import load_from_disk

from tasks.distill.config import DistillConfig
from tasks.distill.engine import distill, prepare_signals, run_preflight
from tasks.distill.signals import load_vocab_map
from tasks.distill.trainer import KDCollator
from tasks.distill.xtok import align, target_starts, vocab_map, xtok_divergence
from tasks.models.load import load_model_and_tokenizer
from tasks.models.tiny import build_tiny_tokenizer
from tests.tasks.distill.snapshots import save_snapshot, seed_records

PAIR = {"teacher": "tiny-llama-teacher", "student": "tiny-llama-student-b"}


def test_vocabularies_are_matched_by_surface_bytes() -> None:
    a, b = build_tiny_tokenizer("a"), build_tiny_tokenizer("b")
    vmap = vocab_map(a, b)
    assert 0 < vmap.shared < vmap.teacher_size == len(a)
    sv, tv = b.get_vocab(), a.get_vocab()
    for token in ("Ġthe", "e"):  # in both vocabularies
        assert int(vmap.teacher_to_student[tv[token]]) == sv[token]
        assert not bool(vmap.student_unshared[sv[token]])
    assert int(vmap.teacher_to_student[tv["<|im_end|>"]]) == -1  # specials are never "shared"
    same = vocab_map(a, a)
    assert same.shared == len(a) - 3 and not bool(same.student_unshared[3:].any())  # 3 specials


def test_aligned_positions_start_at_the_same_character() -> None:
    a, b = build_tiny_tokenizer("a"), build_tiny_tokenizer("b")
    from tasks.distill.data import tokenize_record

    messages = seed_records(1)[0]
    rows = {v: tokenize_record(t, messages, 512) for v, t in (("a", a), ("b", b))}
    starts = {v: target_starts(t, messages, **rows[v]) for v, t in (("a", a), ("b", b))}
    s_idx, t_idx = align(starts["b"], starts["a"])
    assert s_idx[0] == t_idx[0] == 0 and len(s_idx) > 0.5 * len(messages[1]["content"].split())
    for i, j in zip(s_idx, t_idx, strict=True):
        assert starts["b"][i] == starts["a"][j] >= 0
    # The answer text between two aligned starts is the same on both sides.
    content = messages[1]["content"]
    assert all(0 <= starts["a"][j] < len(content) for j in t_idx)


def test_divergence_falls_under_gradient_descent() -> None:
    torch.manual_seed(0)
    p, v, k = 5, 30, 6
    t_sids = torch.stack([torch.randperm(v)[:k] for _ in range(p)])
    t_sids[:, -2:] = -1  # two of each row's top-k have no student counterpart
    t_lp = torch.log_softmax(torch.randn(p, k) * 3, -1) - 0.05
    unshared = torch.zeros(v, dtype=torch.bool)
    unshared[-8:] = True
    logits = torch.zeros(p, v, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=2.0)

    def total() -> torch.Tensor:
        kl, uld = xtok_divergence(
            logits, t_sids, t_lp, unshared, temperature=1.0, matched_weight=0.7
        )
        return (kl + uld).sum()

    start = total().item()
    for _ in range(60):
        opt.zero_grad()
        total().backward()
        opt.step()
    assert total().item() < 0.3 * start


def _divergence(model: torch.nn.Module, prepared: Path, unshared: torch.Tensor, w: float) -> float:
    """Mean aligned divergence of `model` over the prepared training rows."""
    data = load_from_disk(str(prepared))["train"]
    batch = KDCollator(0)(list(data))
    mask = torch.zeros_like(batch["labels"], dtype=torch.bool)
    mask[:, :-1] = batch["labels"][:, 1:] != -100
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[
            mask
        ]
        kl, uld = xtok_divergence(
            logits[batch["t_pos"]],
            batch["t_ids"],
            batch["t_logprobs"],
            unshared,
            temperature=1.0,
            matched_weight=w,
        )
    return float((kl + uld).mean())


def test_cross_tokenizer_kd_trains_and_reuses_the_teacher_cache(tmp_path: Path) -> None:
    assert run_preflight(**PAIR).strategy == "xtok"
    cache = tmp_path / "cache"
    cfg = DistillConfig(
        alpha=0.0, temperature=1.0, top_k=8, max_length=128, learning_rate=1e-2, max_steps=16,
        per_device_batch_size=4, save_steps=100, logging_steps=4,
    )  # fmt: skip
    # A same-vocabulary student of this teacher fills the cache first: the entries are the
    # teacher's, in its own tokenization, so the other-vocabulary student reuses them.
    records = seed_records(8)
    same = prepare_signals(
        save_snapshot(tmp_path / "s0", records, seed_records(2, 150)),
        teacher=PAIR["teacher"], student="tiny-llama-student", strategy="logit", config=cfg,
        work_dir=tmp_path / "w0", cache_root=cache,
    )  # fmt: skip
    assert same["teacher_cache"]["computed"] == 8
    snap = save_snapshot(tmp_path / "s1", records + seed_records(2, offset=8), seed_records(2, 150))
    res = distill(snap, **PAIR, output_dir=tmp_path / "out", config=cfg, cache_root=cache)
    assert res.strategy == "xtok"
    stats = res.metrics["teacher_cache"]
    assert (stats["hits"], stats["computed"]) == (8, 2)  # only the two new records
    assert 0.7 < res.metrics["aligned_share"] < 1.0  # answer tokens only; not template ones
    prepared = tmp_path / "out" / "prepared"
    unshared, weight = load_vocab_map(prepared)
    assert 0.5 < weight < 1.0
    data = load_from_disk(str(prepared))["train"]
    assert all(len(r["t_pos"]) > 0 for r in data)
    student = load_model_and_tokenizer(PAIR["student"], device="cpu")[0]
    before = _divergence(student, prepared, unshared, weight)
    trained = load_model_and_tokenizer(PAIR["student"], adapter_dir=res.adapter_dir, device="cpu")
    after = _divergence(trained[0], prepared, unshared, weight)
    assert after < 0.9 * before, (before, after)
