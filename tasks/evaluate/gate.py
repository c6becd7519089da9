"""The release gate: promote a candidate only if it holds everywhere and helps on new data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic.dataclasses import dataclass as config_dataclass

from tasks.config_base import STRICT
from tasks.evaluate.yardstick import kept_share

Metrics = dict[str, dict[str, float]]  # eval set -> metric -> value
Deltas = dict[str, dict[str, dict[str, float]]]  # eval set -> metric -> {mean_delta, ci_low, ...}
# What the gate can read as answer quality; all are per-example scores in [0, 1].
ANSWER_METRICS = ("rougeL", "answer_match", "exact_match")


@config_dataclass(frozen=True, config=STRICT)
class GatePolicy:
    """Thresholds of the gate; relative tolerances are fractions (0.02 = 2%)."""

    ppl_tolerance: float = 0.02  # allowed relative perplexity regression on any set
    # Answer-level metrics checked on every set (new split, earlier splits, fixed benchmark);
    # answer_match and exact_match exist only on sets with checkable tasks.
    answer_metrics: tuple[str, ...] = ("rougeL", "answer_match", "exact_match")
    # An answer metric "holds" when the low end of its paired 95% interval (candidate minus
    # reference, in the metric's own 0-1 units) is at least -answer_tolerance. An interval
    # wholly below 0 always rejects, whatever perplexity says.
    answer_tolerance: float = 0.02
    # A set with fewer paired examples than this is too small to show that a metric holds:
    # the gate says so, and `block_small_sets` decides whether that rejects.
    min_examples: int = 30
    block_small_sets: bool = False
    require_improvement: bool = True  # a tie with stable is not worth a download on phones
    # Also require answers significantly better than the reference (an interval's low end
    # above 0 on one answer metric of one set), where perplexity alone is not enough:
    # "first_version" asks it of a student's first release (it replaces the untrained base),
    # "always" of every release, "off" of none.
    answer_gain: Literal["off", "first_version", "always"] = "off"
    min_improvement: float = 0.0  # relative new-split perplexity gain that counts as better
    first_version_margin: float = 0.0  # first version: new-split ppl < base * (1 - margin)
    first_version_fixed_tolerance: float = 0.02  # first version vs base on the other sets
    # Share of the teacher's quality the candidate must keep on every set (0 = not checked);
    # a text metric by default: per-token perplexity differs with the tokenizer.
    min_teacher_share: float = 0.0
    teacher_share_metric: str = "rougeL"

    def __post_init__(self) -> None:
        for name in ("ppl_tolerance", "min_improvement", "first_version_margin"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"GatePolicy.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.min_teacher_share <= 1.0:
            raise ValueError(
                f"GatePolicy.min_teacher_share must be in [0, 1], got {self.min_teacher_share}"
            )
        if not 0.0 <= self.answer_tolerance < 1.0:
            raise ValueError(
                f"GatePolicy.answer_tolerance must be in [0, 1), got {self.answer_tolerance}"
            )
        if self.min_examples < 1:
            raise ValueError(f"GatePolicy.min_examples must be at least 1, got {self.min_examples}")
        unknown = set(self.answer_metrics) - set(ANSWER_METRICS)
        if unknown or "rougeL" not in self.answer_metrics:
            raise ValueError(
                f"GatePolicy.answer_metrics must include rougeL and come from {ANSWER_METRICS}, "
                f"got {list(self.answer_metrics)}"
            )
        # JSON and Prefect parameters bring lists; the policy is frozen and hashable.
        object.__setattr__(self, "answer_metrics", tuple(self.answer_metrics))


@dataclass(frozen=True)
class Check:
    """One test of the gate: its value against its threshold."""

    name: str
    passed: bool
    value: float
    threshold: float
    undecided: bool = False  # the set was too small to decide; `passed` follows the policy


@dataclass
class GateDecision:
    """Promote or not, why, and every check that led there."""

    promote: bool
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)
    rule: str = "stable"  # "stable" (compared with the live version) or "first_version"
    reference: str = "stable"
    set_names: dict[str, str] = field(default_factory=dict)  # eval-set key -> readable name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ModelVersion.gate."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        """Inverse of `to_dict`."""
        checks = [Check(**c) for c in data.get("checks", [])]
        return cls(**{**data, "checks": checks})


def _metric(metrics: Metrics, label: str, eval_set: str, name: str) -> float:
    try:
        return float(metrics[eval_set][name])
    except KeyError:
        raise ValueError(f"gate input lacks {name!r} of {label} on eval set {eval_set!r}") from None


def _delta(deltas: Deltas, eval_set: str, name: str, reference: str) -> dict[str, float]:
    try:
        return deltas[eval_set][name]
    except KeyError:
        raise ValueError(
            f"gate input lacks the {name!r} delta vs {reference} on {eval_set!r}"
        ) from None


def decide(
    candidate: Metrics,
    *,
    base: Metrics,
    stable: Metrics | None,
    deltas: Deltas,
    new_set: str,
    policy: GatePolicy | None = None,
    teacher: Metrics | None = None,
    names: dict[str, str] | None = None,
) -> GateDecision:
    """Gate a candidate against stable (or, for a student's first version, the base student).

    `deltas` are candidate-minus-reference bootstrap CIs against that same reference;
    `teacher` (the teacher's metrics) is needed when the policy sets `min_teacher_share`;
    reasons name sets by `names` (key -> readable name), checks keep the keys.
    """
    policy = policy or GatePolicy()
    names = dict(names or {})

    def called(key: str) -> str:
        return names.get(key, key)

    if new_set not in candidate:
        raise ValueError(f"new eval set {new_set!r} not among {sorted(candidate)}")
    if policy.min_teacher_share > 0 and teacher is None:
        raise ValueError(
            "the gate's min_teacher_share needs the teacher's scores: pass teacher_preset"
        )
    first = stable is None
    ref_name, ref = ("base", base) if first else ("stable", stable)
    assert ref is not None
    checks: list[Check] = []
    messages: dict[str, str] = {}

    def add(check: Check, message: str) -> None:
        checks.append(check)
        messages[check.name] = message

    for eval_set in candidate:  # evaluation order: new split, earlier splits, fixed
        cand_ppl = _metric(candidate, "candidate", eval_set, "perplexity")
        ref_ppl = _metric(ref, ref_name, eval_set, "perplexity")
        if first and eval_set == new_set:
            limit = ref_ppl * (1.0 - policy.first_version_margin)
            ok = cand_ppl < limit
            how = "beats" if ok else "does not beat"
            msg = f"perplexity on {called(eval_set)}: {cand_ppl:.4g} {how} base {ref_ppl:.4g}"
            add(Check(f"perplexity_beats_base[{eval_set}]", ok, cand_ppl, limit), msg)
            continue
        tol = policy.first_version_fixed_tolerance if first else policy.ppl_tolerance
        limit = ref_ppl * (1.0 + tol)
        ok = cand_ppl <= limit
        change = (cand_ppl / ref_ppl - 1.0) * 100 if ref_ppl else float("inf")
        verdict = "holds within" if ok else "regresses beyond"
        msg = (
            f"perplexity on {called(eval_set)}: {cand_ppl:.4g} vs {ref_name} {ref_ppl:.4g} "
            f"({change:+.2f}%, {verdict} the {tol:.0%} tolerance)"
        )
        add(Check(f"perplexity_no_regression[{eval_set}]", ok, cand_ppl, limit), msg)

    for eval_set in candidate:
        for check, msg in _answer_checks(deltas, eval_set, policy, ref_name, called(eval_set)):
            add(check, msg)

    gains = _answer_gains(deltas, policy)  # (metric, set key, mean delta)
    if not first and policy.require_improvement:
        cand_ppl = _metric(candidate, "candidate", new_set, "perplexity")
        ref_ppl = _metric(ref, ref_name, new_set, "perplexity")
        limit = ref_ppl * (1.0 - policy.min_improvement)
        better_here = [f"{m} ({d:+.3f})" for m, key, d in gains if key == new_set]
        ok = cand_ppl < limit or bool(better_here)
        what = f"perplexity {cand_ppl:.4g}, needs < {limit:.4g}" + (
            f"; significantly better {', '.join(better_here)}" if better_here else ""
        )
        tie = abs(cand_ppl - ref_ppl) <= policy.ppl_tolerance * ref_ppl
        verdict = "yes" if ok else ("no, a tie within tolerance" if tie else "no")
        msg = f"improvement over stable on {called(new_set)}: {verdict} ({what})"
        add(Check(f"improves_on_stable[{new_set}]", ok, cand_ppl, limit), msg)

    if policy.answer_gain == "always" or (policy.answer_gain == "first_version" and first):
        ok = bool(gains)
        listed = "; ".join(f"{m} {d:+.3f} on {called(key)}" for m, key, d in gains)
        none = "no answer metric's interval is above 0 on any set"
        msg = f"answers better than {ref_name}: {listed if ok else none}"
        add(Check("answers_improve", ok, float(len(gains)), 1.0), msg)

    if policy.min_teacher_share > 0 and teacher is not None:
        for check, msg in _teacher_checks(candidate, teacher, policy, called):
            add(check, msg)

    failed = [c for c in checks if not c.passed]
    promote = not failed
    head = (
        f"promote: all {len(checks)} checks passed against {ref_name}"
        if promote
        else f"reject: {len(failed)} of {len(checks)} checks failed against {ref_name}"
    )
    ordered = failed + [c for c in checks if c.passed]
    reasons = [head] + [messages[c.name] for c in ordered]
    rule = "first_version" if first else "stable"
    return GateDecision(promote, reasons, checks, rule, ref_name, names)


def _teacher_checks(
    candidate: Metrics, teacher: Metrics, policy: GatePolicy, called: Any
) -> list[tuple[Check, str]]:
    """The candidate keeps at least `min_teacher_share` of the teacher's metric on every set."""
    metric, floor = policy.teacher_share_metric, policy.min_teacher_share
    out = []
    for eval_set in candidate:
        if eval_set not in teacher:
            raise ValueError(f"the teacher has no scores on eval set {eval_set!r}")
        cand = _metric(candidate, "candidate", eval_set, metric)
        ref = _metric(teacher, "teacher", eval_set, metric)
        share = kept_share(metric, cand, ref)
        if share is None:  # the teacher scores 0: there is no quality to keep a share of
            ok, value = True, 1.0
            how = f"the teacher scores 0, nothing to keep (candidate {cand:.4g})"
        else:
            ok, value = share >= floor, share
            how = f"{cand:.4g} vs teacher {ref:.4g}: keeps {share:.0%}, needs {floor:.0%}"
        msg = f"{metric} kept of the teacher's on {called(eval_set)}: {how}"
        out.append((Check(f"keeps_teacher_{metric}[{eval_set}]", ok, value, floor), msg))
    return out


def _answer_checks(
    deltas: Deltas, eval_set: str, policy: GatePolicy, ref_name: str, set_name: str
) -> list[tuple[Check, str]]:
    """Per answer metric on one set: significantly worse rejects; else it must hold."""
    out = []
    for name in policy.answer_metrics:
        ci = deltas.get(eval_set, {}).get(name)
        if ci is None:
            if name == "rougeL":  # every set has answers; only the match metrics are optional
                raise ValueError(
                    f"gate input lacks the {name!r} delta vs {ref_name} on {eval_set!r}"
                )
            continue  # no checkable tasks on this set
        n, low, high = int(ci["n"]), ci["ci_low"], ci["ci_high"]
        numbers = (
            f"{name} on {set_name}: delta vs {ref_name} {ci['mean_delta']:+.3f} "
            f"[{low:+.3f}, {high:+.3f}], n={n}"
        )
        check = f"{name}_holds[{eval_set}]"
        if high < 0.0:
            out.append((Check(check, False, high, 0.0), f"{numbers}: significantly worse"))
        elif n < policy.min_examples:
            ok = not policy.block_small_sets
            how = "blocks" if policy.block_small_sets else "does not block"
            msg = f"{numbers}: too small to decide (n < {policy.min_examples}; the policy {how})"
            out.append((Check(check, ok, float(n), float(policy.min_examples), True), msg))
        else:
            floor = -policy.answer_tolerance
            ok = low >= floor
            verdict = "holds" if ok else "may be worse"
            msg = f"{numbers}: {verdict} (the interval's low end vs the {floor:+.3f} tolerance)"
            out.append((Check(check, ok, low, floor), msg))
    return out


def _answer_gains(deltas: Deltas, policy: GatePolicy) -> list[tuple[str, str, float]]:
    """(metric, set, mean delta) of every answer metric whose interval lies wholly above 0."""
    return [
        (name, eval_set, ci["mean_delta"])
        for eval_set, by_metric in deltas.items()
        for name, ci in by_metric.items()
        if name in policy.answer_metrics and ci["ci_low"] > 0.0
    ]
