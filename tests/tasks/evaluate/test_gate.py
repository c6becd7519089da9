"""Gate decisions on constructed cases: regression, improvement, tie, first version."""

from __future__ import annotations

import pytest

from tasks.evaluate.gate import GateDecision, GatePolicy, decide


def _m(ppl_new: float, ppl_fixed: float, ppl_old: float = 10.0) -> dict[str, dict[str, float]]:
    return {
        "new": {"perplexity": ppl_new, "rougeL": 0.3, "bleu": 10.0},
        "fixed": {"perplexity": ppl_fixed, "rougeL": 0.2, "bleu": 5.0},
        "old": {"perplexity": ppl_old, "rougeL": 0.25, "bleu": 7.0},
    }


def _ci(mean: float, lo: float, hi: float) -> dict[str, float]:
    return {"mean_delta": mean, "ci_low": lo, "ci_high": hi, "n": 50.0}


HOLD = {"new": {"rougeL": _ci(0.01, -0.02, 0.04), "bleu": _ci(0.5, -1.0, 2.0)}}
WORSE = {"new": {"rougeL": _ci(-0.08, -0.12, -0.03), "bleu": _ci(0.5, -1.0, 2.0)}}
BETTER = {"new": {"rougeL": _ci(0.08, 0.03, 0.12), "bleu": _ci(2.0, 0.5, 3.0)}}
STABLE = _m(10.0, 12.0)
BASE = _m(20.0, 13.0, 14.0)


def test_improvement_is_promoted() -> None:
    d = decide(_m(8.0, 11.9), base=BASE, stable=STABLE, deltas=HOLD, new_set="new")
    assert d.promote and d.rule == "stable" and d.reference == "stable"
    assert all(c.passed for c in d.checks)
    assert d.reasons[0].startswith("promote")
    names = {c.name for c in d.checks}
    assert {"perplexity_no_regression[old]", "rougeL_holds[new]", "bleu_holds[new]"} <= names


def test_perplexity_regression_on_an_earlier_set_is_rejected() -> None:
    # Better on the new split, but forgot the old one: 10.0 -> 10.5 is +5% > 2%.
    d = decide(_m(8.0, 12.0, ppl_old=10.5), base=BASE, stable=STABLE, deltas=HOLD, new_set="new")
    assert not d.promote
    failed = [c for c in d.checks if not c.passed]
    assert [c.name for c in failed] == ["perplexity_no_regression[old]"]
    assert failed[0].threshold == pytest.approx(10.2)
    assert "old" in d.reasons[1] and "regresses beyond the 2% tolerance" in d.reasons[1]
    # Within tolerance (+1%) passes.
    ok = decide(_m(8.0, 12.0, ppl_old=10.1), base=BASE, stable=STABLE, deltas=HOLD, new_set="new")
    assert ok.promote


def test_significantly_worse_rouge_is_rejected() -> None:
    d = decide(_m(8.0, 12.0), base=BASE, stable=STABLE, deltas=WORSE, new_set="new")
    assert not d.promote
    assert [c.name for c in d.checks if not c.passed] == ["rougeL_holds[new]"]


def test_tie_is_rejected_by_default_and_promoted_when_allowed() -> None:
    tie = {"new": {"rougeL": _ci(0.0, 0.0, 0.0), "bleu": _ci(0.0, 0.0, 0.0)}}
    d = decide(STABLE, base=BASE, stable=STABLE, deltas=tie, new_set="new")
    assert not d.promote
    assert [c.name for c in d.checks if not c.passed] == ["improves_on_stable[new]"]
    assert "tie" in d.reasons[1]
    lenient = GatePolicy(require_improvement=False)
    assert decide(
        STABLE, base=BASE, stable=STABLE, deltas=tie, new_set="new", policy=lenient
    ).promote


def test_text_improvement_alone_breaks_a_perplexity_tie() -> None:
    assert decide(STABLE, base=BASE, stable=STABLE, deltas=BETTER, new_set="new").promote


def test_first_version_must_beat_base() -> None:
    cand = {k: v for k, v in _m(15.0, 13.1).items() if k != "old"}
    d = decide(cand, base=BASE, stable=None, deltas=HOLD, new_set="new")
    assert d.promote and d.rule == "first_version" and d.reference == "base"
    assert "perplexity_beats_base[new]" in {c.name for c in d.checks}
    # Not better than base on the new split.
    cand_same = {k: v for k, v in _m(20.0, 13.0).items() if k != "old"}
    d = decide(cand_same, base=BASE, stable=None, deltas=HOLD, new_set="new")
    assert not d.promote
    assert [c.name for c in d.checks if not c.passed] == ["perplexity_beats_base[new]"]
    # Better on new, but the fixed set regressed beyond tolerance (13 -> 14 is +7.7%).
    cand_forgot = {k: v for k, v in _m(15.0, 14.0).items() if k != "old"}
    d = decide(cand_forgot, base=BASE, stable=None, deltas=HOLD, new_set="new")
    assert [c.name for c in d.checks if not c.passed] == ["perplexity_no_regression[fixed]"]


def test_decision_round_trips_through_json_dict() -> None:
    d = decide(_m(8.0, 11.9), base=BASE, stable=STABLE, deltas=HOLD, new_set="new")
    data = d.to_dict()
    assert set(data["checks"][0]) == {"name", "passed", "value", "threshold"}
    assert GateDecision.from_dict(data) == d


def test_missing_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="new eval set 'nope'"):
        decide(STABLE, base=BASE, stable=STABLE, deltas=HOLD, new_set="nope")
    with pytest.raises(ValueError, match="perplexity.*stable.*'old'"):
        stable = {k: v for k, v in STABLE.items() if k != "old"}
        decide(_m(8.0, 12.0), base=BASE, stable=stable, deltas=HOLD, new_set="new")
    with pytest.raises(ValueError, match="'bleu' delta"):
        decide(
            _m(8.0, 12.0),
            base=BASE,
            stable=STABLE,
            deltas={"new": {"rougeL": _ci(0, 0, 0)}},
            new_set="new",
        )
    with pytest.raises(ValueError, match="ppl_tolerance"):
        GatePolicy(ppl_tolerance=2.0)


NAMES = {"new": "new test split (snapshot 3, 2026-11-30)", "old": "earlier test split (v1)"}


def test_reasons_name_sets_in_full_and_checks_keep_the_keys() -> None:
    d = decide(
        _m(8.0, 12.0, ppl_old=10.5),
        base=BASE,
        stable=STABLE,
        deltas=HOLD,
        new_set="new",
        names=NAMES,
    )
    assert d.set_names == NAMES
    assert "perplexity_no_regression[old]" in {c.name for c in d.checks}
    assert d.reasons[1] == (
        "perplexity on earlier test split (v1): 10.5 vs stable 10 "
        "(+5.00%, regresses beyond the 2% tolerance)"
    )
    assert any(
        r.startswith("rougeL on new test split (snapshot 3, 2026-11-30): ") for r in d.reasons
    )
    # Reasons follow the evaluation order: the new split before earlier ones and the fixed set.
    passed = [r for r in d.reasons[2:] if r.startswith("perplexity on")]
    assert passed[0].startswith("perplexity on new test split") and "fixed" in passed[1]
    assert GateDecision.from_dict(d.to_dict()) == d


TEACHER = {
    "new": {"perplexity": 5.0, "rougeL": 0.5, "bleu": 20.0},
    "fixed": {"perplexity": 6.0, "rougeL": 0.25, "bleu": 8.0},
    "old": {"perplexity": 5.5, "rougeL": 0.0, "bleu": 0.0},
}


def test_min_teacher_share_is_off_by_default_and_checks_every_set() -> None:
    cand = _m(8.0, 11.9)  # ROUGE-L 0.3 of the teacher's 0.5 (60%), 0.2 of 0.25 (80%)
    off = decide(cand, base=BASE, stable=STABLE, deltas=HOLD, new_set="new", teacher=TEACHER)
    assert off.promote and not any("teacher" in c.name for c in off.checks)
    policy = GatePolicy(min_teacher_share=0.7)
    d = decide(
        cand,
        base=BASE,
        stable=STABLE,
        deltas=HOLD,
        new_set="new",
        policy=policy,
        teacher=TEACHER,
        names=NAMES,
    )
    assert not d.promote
    assert [c.name for c in d.checks if not c.passed] == ["keeps_teacher_rougeL[new]"]
    assert d.reasons[1] == (
        "rougeL kept of the teacher's on new test split (snapshot 3, 2026-11-30): "
        "0.3 vs teacher 0.5: keeps 60%, needs 70%"
    )
    # A teacher scoring 0 leaves nothing to keep: that set passes and says why.
    zero = next(c for c in d.checks if c.name == "keeps_teacher_rougeL[old]")
    assert zero.passed
    assert decide(
        cand,
        base=BASE,
        stable=STABLE,
        deltas=HOLD,
        new_set="new",
        policy=GatePolicy(min_teacher_share=0.6),
        teacher=TEACHER,
    ).promote
    with pytest.raises(ValueError, match="needs the teacher's scores"):
        decide(cand, base=BASE, stable=STABLE, deltas=HOLD, new_set="new", policy=policy)
    with pytest.raises(ValueError, match="min_teacher_share"):
        GatePolicy(min_teacher_share=1.5)
