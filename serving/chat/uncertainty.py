"""Live token uncertainty: probability and entropy per token, alerts, the per-answer summary.

Pure Python on purpose: the service computes this from any OpenAI-compatible stream's
`logprobs` (our worker adds the exact entropy; a plain server gives only top-k, from which
the entropy is bounded below), so serving/ needs no numpy or model runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_STORED_ALERTS = 50


@dataclass(frozen=True)
class Thresholds:
    """When a token is low-confidence, when entropy spikes, how long a run must be."""

    low_p: float = 0.3
    spike_entropy: float = 3.0
    low_run: int = 4


@dataclass(frozen=True)
class TokenStat:
    """One generated token: its text, probability under the model and entropy (nats)."""

    index: int
    text: str
    p: float
    entropy: float


@dataclass(frozen=True)
class Alert:
    """An uncertainty alert at a token: an entropy spike or a run of low-confidence tokens."""

    kind: str  # "spike" | "low_confidence_run"
    index: int
    value: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stream events and the stored summary)."""
        return {
            "kind": self.kind,
            "index": self.index,
            "value": self.value,
            "message": self.message,
        }


def entropy_from_top(logprobs: list[float]) -> float:
    """Entropy (nats) from the top-k log-probabilities: the k tokens plus the rest as one.

    A lower bound of the true entropy (the remaining mass is treated as a single outcome);
    exact when the top-k hold all the mass.
    """
    probs = [math.exp(lp) for lp in logprobs if lp > -math.inf]
    h = -sum(p * math.log(p) for p in probs if p > 0)
    rest = 1.0 - sum(probs)
    if rest > 1e-9:
        h -= rest * math.log(rest)
    return max(h, 0.0)


def token_stat(index: int, entry: dict[str, Any]) -> TokenStat:
    """The stat of one OpenAI `logprobs.content` entry (uses its `entropy` when present)."""
    logprob = float(entry.get("logprob", 0.0))
    exact = entry.get("entropy")
    if isinstance(exact, int | float):
        h = float(exact)
    else:
        top = [float(t["logprob"]) for t in entry.get("top_logprobs") or []]
        h = entropy_from_top(top or [logprob])
    return TokenStat(index, str(entry.get("token", "")), math.exp(min(logprob, 0.0)), h)


@dataclass
class UncertaintyMonitor:
    """Feeds on tokens as they stream; fires alerts; summarises the answer."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    tokens: int = 0
    _entropy_sum: float = 0.0
    _p_sum: float = 0.0
    _low: int = 0
    _run: int = 0
    _max_entropy: float = 0.0
    _spiking: bool = False
    alerts: list[Alert] = field(default_factory=list)
    _fired: dict[str, int] = field(default_factory=dict)

    def feed(self, stat: TokenStat) -> list[Alert]:
        """Account one token; the alerts it fires (edge-triggered: a plateau fires once)."""
        t = self.thresholds
        self.tokens += 1
        self._entropy_sum += stat.entropy
        self._p_sum += stat.p
        self._max_entropy = max(self._max_entropy, stat.entropy)
        fired: list[Alert] = []
        spiking = stat.entropy >= t.spike_entropy
        if spiking and not self._spiking:
            fired.append(
                Alert(
                    "spike",
                    stat.index,
                    round(stat.entropy, 4),
                    f"entropy {stat.entropy:.2f} nats at token {stat.index} ({stat.text!r})",
                )
            )
        self._spiking = spiking
        if stat.p < t.low_p:
            self._low += 1
            self._run += 1
            if self._run == t.low_run:
                fired.append(
                    Alert(
                        "low_confidence_run",
                        stat.index,
                        float(self._run),
                        f"{self._run} tokens in a row with p < {t.low_p:g}"
                        f" (tokens {stat.index - self._run + 1}-{stat.index})",
                    )
                )
        else:
            self._run = 0
        for alert in fired:
            self._fired[alert.kind] = self._fired.get(alert.kind, 0) + 1
            if len(self.alerts) < MAX_STORED_ALERTS:
                self.alerts.append(alert)
        return fired

    def summary(self) -> dict[str, Any]:
        """What is stored with the interaction: means, low-confidence share, alerts."""
        n = self.tokens
        t = self.thresholds
        return {
            "tokens": n,
            "mean_entropy": round(self._entropy_sum / n, 4) if n else None,
            "max_entropy": round(self._max_entropy, 4) if n else None,
            "mean_p": round(self._p_sum / n, 4) if n else None,
            "low_p_share": round(self._low / n, 4) if n else None,
            "alert_counts": dict(self._fired),
            "alerts": [a.to_dict() for a in self.alerts],
            "thresholds": {
                "low_p": t.low_p,
                "spike_entropy": t.spike_entropy,
                "low_run": t.low_run,
            },
        }
