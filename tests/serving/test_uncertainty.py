"""Token uncertainty: entropy from top log-probabilities, alerts, the per-answer summary."""

from __future__ import annotations

import math

import pytest

from serving.chat.uncertainty import (
    Thresholds,
    TokenStat,
    UncertaintyMonitor,
    entropy_from_top,
    token_stat,
)


def test_entropy_from_top_is_exact_when_the_top_hold_all_mass() -> None:
    four = [math.log(0.25)] * 4
    assert entropy_from_top(four) == pytest.approx(math.log(4))
    assert entropy_from_top([0.0]) == 0.0  # one certain token


def test_entropy_from_top_counts_the_rest_as_one_outcome() -> None:
    # top-2 of 0.5 and 0.25; the remaining 0.25 is one outcome: a lower bound
    h = entropy_from_top([math.log(0.5), math.log(0.25)])
    assert h == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))


def test_token_stat_prefers_the_worker_exact_entropy() -> None:
    entry = {"token": " Paris", "logprob": math.log(0.8), "entropy": 0.9, "top_logprobs": []}
    stat = token_stat(3, entry)
    assert (stat.index, stat.text, stat.entropy) == (3, " Paris", 0.9)
    assert stat.p == pytest.approx(0.8)
    plain = {"token": "x", "logprob": math.log(0.5), "top_logprobs": [{"logprob": math.log(0.5)}]}
    assert token_stat(0, plain).entropy == pytest.approx(math.log(2))


def feed(monitor: UncertaintyMonitor, values: list[tuple[float, float]]) -> list[list[str]]:
    return [
        [a.kind for a in monitor.feed(TokenStat(i, f"t{i}", p, h))]
        for i, (p, h) in enumerate(values)
    ]


def test_spike_fires_on_the_rising_edge_only() -> None:
    monitor = UncertaintyMonitor(Thresholds(low_p=0.3, spike_entropy=2.0, low_run=10))
    fired = feed(monitor, [(0.9, 0.5), (0.9, 2.5), (0.9, 3.0), (0.9, 0.2), (0.9, 2.1)])
    assert fired == [[], ["spike"], [], [], ["spike"]]
    assert monitor.summary()["alert_counts"] == {"spike": 2}


def test_low_confidence_run_fires_once_when_the_run_reaches_its_length() -> None:
    monitor = UncertaintyMonitor(Thresholds(low_p=0.3, spike_entropy=99, low_run=3))
    p = [0.1, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1, 0.5]
    fired = feed(monitor, [(x, 1.0) for x in p])
    assert fired == [[], [], [], [], [], ["low_confidence_run"], [], []]
    summary = monitor.summary()
    assert summary["tokens"] == 8
    assert summary["low_p_share"] == pytest.approx(6 / 8)
    assert summary["mean_entropy"] == pytest.approx(1.0)
    assert summary["alerts"][0]["index"] == 5
    assert "tokens 3-5" in summary["alerts"][0]["message"]


def test_empty_answer_summary_has_no_means() -> None:
    summary = UncertaintyMonitor().summary()
    assert summary["tokens"] == 0 and summary["mean_entropy"] is None
    assert summary["thresholds"] == {"low_p": 0.3, "spike_entropy": 3.0, "low_run": 4}
