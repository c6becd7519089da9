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


def _ci(mean: float, lo: float, hi: float, n: int = 50) -> dict[str, float]:
    return {"mean_delta": mean, "ci_low": lo, "ci_high": hi, "n": float(n)}


def _everywhere(new: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """Deltas with `new` on the new split and answers that hold on the other sets."""
    held = {"rougeL": _ci(0.0, -0.01, 0.01), "bleu": _ci(0.0, -1.0, 1.0)}
    return {"new": new, "fixed": held, "old": held}


HOLD = _everywhere({"rougeL": _ci(0.01, -0.02, 0.04), "bleu": _ci(0.5, -1.0, 2.0)})
WORSE = _everywhere({"rougeL": _ci(-0.08, -0.12, -0.03), "bleu": _ci(0.5, -1.0, 2.0)})
BETTER = _everywhere({"rougeL": _ci(0.08, 0.03, 0.12), "bleu": _ci(2.0, 0.5, 3.0)})
STABLE = _m(10.0, 12.0)
BASE = _m(20.0, 13.0, 14.0)


def test_improvement_is_promoted() -> None:
    d = decide(_m(8.0, 11.9), base=BASE, stable=STABLE, deltas=HOLD, new_set="new")
    assert d.promote and d.rule == "stable" and d.reference == "stable"
    assert all(c.passed for c in d.checks)
    assert d.reasons[0].startswith("promote")
    names = {c.name for c in d.checks}
    expected = {"perplexity_no_regression[old]", "rougeL_holds[new]", "rougeL_holds[fixed]"}
    assert expected <= names and "rougeL_holds[old]" in names


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
    tie = _everywhere({"rougeL": _ci(0.0, 0.0, 0.0), "bleu": _ci(0.0, 0.0, 0.0)})
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
    assert set(data["checks"][0]) == {"name", "passed", "value", "threshold", "undecided"}
    assert GateDecision.from_dict(data) == d


def test_missing_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="new eval set 'nope'"):
        decide(STABLE, base=BASE, stable=STABLE, deltas=HOLD, new_set="nope")
    with pytest.raises(ValueError, match="perplexity.*stable.*'old'"):
        stable = {k: v for k, v in STABLE.items() if k != "old"}
        decide(_m(8.0, 12.0), base=BASE, stable=stable, deltas=HOLD, new_set="new")
    with pytest.raises(ValueError, match="'rougeL' delta vs stable on 'old'"):
        decide(
            _m(8.0, 12.0),
            base=BASE,
            stable=STABLE,
            deltas={k: v for k, v in HOLD.items() if k != "old"},
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


# The failure the gate used to let through (a demo's v1): perplexity fell on every set, yet
# greedy answers on the fixed benchmark got worse with an interval wholly below 0.
LOWER_PPL = {k: v for k, v in _m(15.0, 11.0).items() if k != "old"}
WORSE_ANSWERS = {
    "new": {"rougeL": _ci(-0.03, -0.08, 0.0, n=40)},
    "fixed": {
        "rougeL": _ci(-0.028, -0.067, -0.001, n=64),
        "answer_match": _ci(-0.05, -0.15, 0.05, n=32),
    },
}


def test_lower_perplexity_with_worse_answers_on_the_fixed_benchmark_is_rejected() -> None:
    names = {"new": "new test split", "fixed": "fixed benchmark"}
    d = decide(LOWER_PPL, base=BASE, stable=None, deltas=WORSE_ANSWERS, new_set="new", names=names)
    assert not d.promote
    # Perplexity passed everywhere: the answers alone decided.
    assert all(c.passed for c in d.checks if c.name.startswith("perplexity"))
    failed = [c for c in d.checks if not c.passed]
    # The new split's interval touches 0 but reaches below the tolerance: not shown to hold;
    # so does the fixed benchmark's answer match (interval across 0, low end -0.15).
    assert [c.name for c in failed] == [
        "rougeL_holds[new]", "rougeL_holds[fixed]", "answer_match_holds[fixed]",
    ]  # fmt: skip
    assert d.reasons[0] == "reject: 3 of 5 checks failed against base"
    assert d.reasons[2] == (
        "rougeL on fixed benchmark: delta vs base -0.028 [-0.067, -0.001], n=64: "
        "significantly worse"
    )
    assert d.reasons[1].startswith(
        "rougeL on new test split: delta vs base -0.030 [-0.080, +0.000], n=40: may be worse"
    )
    match = next(c for c in d.checks if c.name == "answer_match_holds[fixed]")
    assert match.value == pytest.approx(-0.15) and match.threshold == pytest.approx(-0.02)


def test_holds_means_the_low_end_clears_the_tolerance() -> None:
    def gate(low: float, tolerance: float) -> bool:
        deltas = {"new": {"rougeL": _ci(0.0, low, 0.05)}, "fixed": {"rougeL": _ci(0.0, low, 0.05)}}
        policy = GatePolicy(answer_tolerance=tolerance)
        return decide(LOWER_PPL, base=BASE, stable=None, deltas=deltas, new_set="new",
                      policy=policy).promote  # fmt: skip

    assert gate(-0.019, 0.02) and not gate(-0.021, 0.02)
    assert not gate(-0.001, 0.0) and gate(0.0, 0.0)


def test_a_small_set_says_so_and_the_policy_decides_whether_it_blocks() -> None:
    deltas = {
        "new": {"rougeL": _ci(0.0, -0.2, 0.2, n=12)},
        "fixed": {"rougeL": _ci(0, -0.01, 0.01)},
    }
    d = decide(LOWER_PPL, base=BASE, stable=None, deltas=deltas, new_set="new")
    assert d.promote
    small = next(c for c in d.checks if c.name == "rougeL_holds[new]")
    assert small.undecided and small.passed and small.value == 12 and small.threshold == 30
    assert any("too small to decide (n < 30; the policy does not block)" in r for r in d.reasons)
    strict = GatePolicy(block_small_sets=True)
    blocked = decide(LOWER_PPL, base=BASE, stable=None, deltas=deltas, new_set="new",
                     policy=strict)  # fmt: skip
    assert not blocked.promote
    assert [c.name for c in blocked.checks if not c.passed] == ["rougeL_holds[new]"]
    # Significantly worse rejects even where the set is too small to show that it holds.
    worse = {**deltas, "new": {"rougeL": _ci(-0.2, -0.3, -0.1, n=12)}}
    assert not decide(LOWER_PPL, base=BASE, stable=None, deltas=worse, new_set="new").promote


def test_answer_gain_can_be_required() -> None:
    policy = GatePolicy(answer_gain="first_version")
    held = {"new": {"rougeL": _ci(0.0, -0.01, 0.02)}, "fixed": {"rougeL": _ci(0.0, -0.01, 0.01)}}
    d = decide(LOWER_PPL, base=BASE, stable=None, deltas=held, new_set="new", policy=policy)
    assert not d.promote and [c.name for c in d.checks if not c.passed] == ["answers_improve"]
    assert "no answer metric's interval is above 0" in d.reasons[1]
    better = {**held, "fixed": {"rougeL": _ci(0.04, 0.01, 0.07)}}
    ok = decide(LOWER_PPL, base=BASE, stable=None, deltas=better, new_set="new", policy=policy,
                names={"fixed": "fixed benchmark"})  # fmt: skip
    assert ok.promote
    assert "answers better than base: rougeL +0.040 on fixed benchmark" in ok.reasons
    # "first_version" asks nothing more of a later release; "always" does.
    later = {k: v for k, v in _m(8.0, 11.9).items() if k != "old"}
    stable = {k: v for k, v in STABLE.items() if k != "old"}
    assert decide(
        later, base=BASE, stable=stable, deltas=held, new_set="new", policy=policy
    ).promote
    always = GatePolicy(answer_gain="always")
    d = decide(later, base=BASE, stable=stable, deltas=held, new_set="new", policy=always)
    assert [c.name for c in d.checks if not c.passed] == ["answers_improve"]
    assert "answers better than stable: no answer metric" in d.reasons[1]


def test_answer_policy_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match="answer_metrics must include rougeL"):
        GatePolicy(answer_metrics=("bleu",))
    with pytest.raises(ValueError, match="answer_tolerance"):
        GatePolicy(answer_tolerance=-0.1)
    with pytest.raises(ValueError, match=r"answer_gain\n.*'off', 'first_version' or 'always'"):
        GatePolicy(answer_gain="sometimes")  # type: ignore[arg-type]
    assert GatePolicy(answer_metrics=["rougeL"]).answer_metrics == ("rougeL",)  # type: ignore[arg-type]
