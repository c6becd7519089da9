"""Pair preflight decisions and the KD loss's mathematical properties."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.distill.loss import divergence, kd_loss, student_buckets, teacher_buckets
from tasks.distill.preflight import StrategyError, preflight, tokenizer_fingerprint
from tasks.models.tiny import build_tiny_tokenizer


def test_identical_tokenizers_choose_logit_kd() -> None:
    result = preflight(build_tiny_tokenizer("a"), build_tiny_tokenizer("a"))
    assert result.strategy == "logit" and result.same_vocab
    assert "identical" in result.reason


def test_different_vocabularies_get_cross_tokenizer_logit_kd() -> None:
    result = preflight(build_tiny_tokenizer("a"), build_tiny_tokenizer("b"))
    assert result.strategy == "xtok" and not result.same_vocab
    assert "token→id maps differ" in result.reason and "shared" in result.reason
    assert 0 < result.shared_tokens < 600
    assert result.shared_share == pytest.approx(result.shared_tokens / 600)


def test_forcing_logit_kd_on_different_vocabularies_is_refused() -> None:
    with pytest.raises(StrategyError, match="cannot force logit distillation"):
        preflight(build_tiny_tokenizer("a"), build_tiny_tokenizer("b"), requested="logit")


def test_same_vocab_other_template_is_not_identical() -> None:
    other = build_tiny_tokenizer("a")
    other.chat_template = "{{ messages[0]['content'] }}"
    result = preflight(build_tiny_tokenizer("a"), other)
    assert result.same_vocab and not result.same_chat_template
    # Each side renders records with its own template; every ordinary token is shared.
    assert result.strategy == "xtok" and result.shared_tokens == 597
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(build_tiny_tokenizer("a"))


def test_forced_sequence_is_respected() -> None:
    result = preflight(build_tiny_tokenizer("a"), build_tiny_tokenizer("a"), requested="sequence")
    assert result.strategy == "sequence" and "forced" in result.reason


def _teacher_topk(logits: torch.Tensor, k: int, temperature: float):
    logp = torch.log_softmax(logits / temperature, -1)
    lp, ids = logp.topk(k, -1)
    return ids, lp, (1 - lp.exp().sum(-1)).clamp(min=0)


def test_divergence_is_zero_when_student_matches_teacher() -> None:
    logits = torch.randn(7, 50)
    ids, lp, tail = _teacher_topk(logits, 5, 2.0)
    for kind in ("forward_kl", "jsd"):
        div = divergence(teacher_buckets(lp, tail), student_buckets(logits, ids, 2.0), kind)
        assert torch.allclose(div, torch.zeros(7), atol=1e-5)


def test_divergence_positive_and_jsd_bounded() -> None:
    torch.manual_seed(0)
    teacher, student = torch.randn(9, 40) * 3, torch.randn(9, 40) * 3
    ids, lp, tail = _teacher_topk(teacher, 8, 1.0)
    p, log_q = teacher_buckets(lp, tail), student_buckets(student, ids, 1.0)
    kl, jsd = divergence(p, log_q, "forward_kl"), divergence(p, log_q, "jsd")
    assert (kl > 0).all() and (jsd > 0).all() and (jsd <= math.log(2) + 1e-6).all()
    assert torch.allclose(p.sum(-1), torch.ones(9))
    assert torch.allclose(log_q.exp().sum(-1), torch.ones(9), atol=1e-5)


def test_alpha_one_is_cross_entropy_and_kd_moves_student_towards_teacher() -> None:
    torch.manual_seed(1)
    teacher = torch.randn(6, 30) * 2
    targets = torch.randint(0, 30, (6,))
    ids, lp, tail = _teacher_topk(teacher, 4, 2.0)
    student = torch.zeros(6, 30, requires_grad=True)
    ce_only, _ = kd_loss(student, targets, ids, lp, tail, alpha=1.0, temperature=2.0)
    assert torch.isclose(ce_only, torch.nn.functional.cross_entropy(student, targets))
    opt = torch.optim.Adam([student], lr=0.2)
    first = None
    for _ in range(100):
        loss, parts = kd_loss(student, targets, ids, lp, tail, alpha=0.0, temperature=2.0)
        first = parts["div"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["div"] < 0.1 * first


def test_mismatched_token_counts_are_an_error() -> None:
    ids, lp, tail = _teacher_topk(torch.randn(3, 10), 2, 1.0)
    with pytest.raises(ValueError, match="token count"):
        kd_loss(
            torch.randn(4, 10),
            torch.zeros(4, dtype=torch.long),
            ids,
            lp,
            tail,
            alpha=0.5,
            temperature=1.0,
        )
