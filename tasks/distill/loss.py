"""KD loss on target tokens: α·CE + (1−α)·T²·divergence to the teacher's top-k plus tail bucket."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def teacher_buckets(t_logprobs: torch.Tensor, t_tail: torch.Tensor) -> torch.Tensor:
    """[N, k+1] teacher probabilities: top-k then the tail mass, renormalised to sum to one."""
    probs = torch.cat([t_logprobs.float().exp(), t_tail.float().clamp(min=0).unsqueeze(-1)], -1)
    return probs / probs.sum(-1, keepdim=True).clamp(min=_EPS)


def student_buckets(logits: torch.Tensor, t_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """[N, k+1] student log-probabilities on the teacher's top-k ids, then the rest collapsed.

    Collapsing every other token into one bucket keeps the divergence exact on what the teacher
    cache knows (its top-k and their total) without inventing the teacher's tail shape. Only a
    logsumexp runs over the vocabulary: no [N, V] log-softmax is materialised.
    """
    scaled = logits.float() / temperature
    top = scaled.gather(-1, t_ids.long()) - torch.logsumexp(scaled, dim=-1, keepdim=True)
    tail = torch.log1p(-top.exp().sum(-1).clamp(max=1 - 1e-6)).unsqueeze(-1)
    return torch.cat([top, tail], -1)


def _kl(p: torch.Tensor, log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    # xlogy-style: buckets with p == 0 contribute nothing (their log may be -inf).
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def divergence(
    p_teacher: torch.Tensor, log_q_student: torch.Tensor, kind: str = "forward_kl"
) -> torch.Tensor:
    """Per-token divergence [N] between teacher buckets p and student log-buckets log q."""
    log_p = p_teacher.clamp(min=_EPS).log()
    if kind == "forward_kl":
        return _kl(p_teacher, log_p, log_q_student)
    if kind == "jsd":
        q = log_q_student.exp()
        m = 0.5 * (p_teacher + q)
        log_m = m.clamp(min=_EPS).log()
        return 0.5 * _kl(p_teacher, log_p, log_m) + 0.5 * _kl(q, log_q_student, log_m)
    raise ValueError(f"divergence must be forward_kl or jsd, got {kind!r}")


def mix_weights(alpha: float | torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """[N] per-token CE weights: a float broadcast, or one weight per token (corrected rows)."""
    weights = torch.as_tensor(alpha, dtype=torch.float32, device=device)
    return weights.expand(n) if weights.dim() == 0 else weights


def kd_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    t_ids: torch.Tensor,
    t_logprobs: torch.Tensor,
    t_tail: torch.Tensor,
    *,
    alpha: float | torch.Tensor,
    temperature: float,
    kind: str = "forward_kl",
    num_items: int | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss over N target tokens (logits [N, V]); sums are divided by `num_items` (default N).

    `alpha` is the CE weight, one for all tokens or one per token ([N]): a token of a user's
    correction gets its own weight (1.0 = the correction alone, no teacher term).
    """
    if not logits.shape[0] == targets.shape[0] == t_ids.shape[0]:
        raise ValueError(
            f"KD inputs disagree on the token count: logits {logits.shape[0]}, "
            f"targets {targets.shape[0]}, teacher {t_ids.shape[0]}"
        )
    denom = torch.as_tensor(num_items if num_items is not None else targets.numel()).clamp(min=1)
    a = mix_weights(alpha, targets.numel(), logits.device)
    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    div = torch.zeros_like(ce)
    if bool((a < 1.0).any()):
        p = teacher_buckets(t_logprobs, t_tail)
        log_q = student_buckets(logits, t_ids, temperature)
        div = divergence(p, log_q, kind) * temperature**2
    loss = ((a * ce).sum() + ((1 - a) * div).sum()) / denom.to(logits.device)
    # Logged per local token: `denom` may count the whole accumulated (multi-device) batch.
    n_local = max(targets.numel(), 1)
    parts = {"ce": ce.sum().item() / n_local, "div": div.sum().item() / n_local}
    return loss, parts
