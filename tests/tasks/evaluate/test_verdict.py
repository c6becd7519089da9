"""The one-line views of a gate decision: why it was decided, and the fixed benchmark's answers."""

from __future__ import annotations

from tasks.evaluate.gate import GatePolicy, decide
from tasks.evaluate.verdict import Verdict, answers_line


def _ci(mean: float, lo: float, hi: float, n: int = 64) -> dict[str, float]:
    return {"mean_delta": mean, "ci_low": lo, "ci_high": hi, "n": float(n)}


CAND = {"new": {"perplexity": 9.0}, "fixed": {"perplexity": 11.0}}
BASE = {"new": {"perplexity": 20.0}, "fixed": {"perplexity": 12.0}}


def _verdict(deltas: dict, policy: GatePolicy | None = None) -> Verdict:
    names = {"new": "new test split", "fixed": "fixed benchmark"}
    gate = decide(CAND, base=BASE, stable=None, deltas=deltas, new_set="new", policy=policy,
                  names=names)  # fmt: skip
    return Verdict(
        decision="promote" if gate.promote else "reject",
        gate=gate,
        detail="; ".join(gate.reasons),
        new_set="new",
        new_set_name=names["new"],
        set_names=names,
        teacher="no teacher evaluated",
        answers=answers_line(deltas, "fixed", names["fixed"], "base"),
        metrics={},
        report_path="report.md",
        results_paths={},
        evaluation_ids=[],
    )


def test_why_is_the_decision_and_the_failed_checks_only() -> None:
    deltas = {
        "new": {"rougeL": _ci(0.0, -0.01, 0.01, n=40)},
        "fixed": {"rougeL": _ci(-0.03, -0.06, -0.01), "answer_match": _ci(0.0, 0.0, 0.0, n=54)},
    }
    v = _verdict(deltas)
    assert not v.promote
    assert v.why == (
        "reject: 1 of 5 checks failed against base; rougeL on fixed benchmark: delta vs base "
        "-0.030 [-0.060, -0.010], n=64: significantly worse"
    )
    assert len(v.detail) > len(v.why) and v.detail.startswith(v.why)
    assert v.answers == (
        "answers on fixed benchmark (n=64, vs base): ROUGE-L -0.030 [-0.060, -0.010], "
        "answer match +0.000 [+0.000, +0.000]: worse than base"
    )


def test_answers_line_says_better_only_when_an_interval_clears_zero() -> None:
    better = {"fixed": {"rougeL": _ci(0.05, 0.01, 0.09), "answer_match": _ci(0, -0.02, 0.02)}}
    assert answers_line(better, "fixed", "fixed benchmark", "stable").endswith(
        ": better than stable"
    )
    unclear = {"fixed": {"rougeL": _ci(0.02, -0.01, 0.05)}}
    assert answers_line(unclear, "fixed", "fixed benchmark", "base").endswith(
        ": no clear difference from base"
    )
    assert answers_line({}, "fixed", "fixed benchmark", "base") == (
        "answers on fixed benchmark: not evaluated"
    )
    v = _verdict({"new": {"rougeL": _ci(0, -0.01, 0.01, n=40)}, **better})
    assert v.promote and v.why == "promote: all 5 checks passed against base"
