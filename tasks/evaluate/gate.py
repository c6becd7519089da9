"""The release gate: promote a candidate only if it holds everywhere and helps on new data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.evaluate.yardstick import kept_share

Metrics = dict[str, dict[str, float]]  # eval set -> metric -> value
Deltas = dict[str, dict[str, dict[str, float]]]  # eval set -> metric -> {mean_delta, ci_low, ...}


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the gate; relative tolerances are fractions (0.02 = 2%)."""

    ppl_tolerance: float = 0.02  # allowed relative perplexity regression on any set
    text_metrics: tuple[str, ...] = ("rougeL", "bleu")  # must improve or hold on the new split
    text_ci_floor: float = 0.0  # pass if the delta's CI upper bound >= this (CI includes 0)
    require_improvement: bool = True  # a tie with stable is not worth a download on phones
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


@dataclass(frozen=True)
class Check:
    """One test of the gate: its value against its threshold."""

    name: str
    passed: bool
    value: float
    threshold: float


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

    for name in policy.text_metrics:
        ci = _delta(deltas, new_set, name, ref_name)
        ok = ci["ci_high"] >= policy.text_ci_floor
        msg = (
            f"{name} on {called(new_set)}: delta vs {ref_name} {ci['mean_delta']:+.4g} "
            f"[{ci['ci_low']:+.4g}, {ci['ci_high']:+.4g}] "
            + ("improves or holds" if ok else "is significantly worse")
        )
        add(Check(f"{name}_holds[{new_set}]", ok, ci["ci_high"], policy.text_ci_floor), msg)

    if not first and policy.require_improvement:
        cand_ppl = _metric(candidate, "candidate", new_set, "perplexity")
        ref_ppl = _metric(ref, ref_name, new_set, "perplexity")
        limit = ref_ppl * (1.0 - policy.min_improvement)
        better_text = [n for n in policy.text_metrics if deltas[new_set][n]["ci_low"] > 0.0]
        ok = cand_ppl < limit or bool(better_text)
        what = f"perplexity {cand_ppl:.4g}, needs < {limit:.4g}" + (
            f"; significantly better {', '.join(better_text)}" if better_text else ""
        )
        tie = abs(cand_ppl - ref_ppl) <= policy.ppl_tolerance * ref_ppl
        verdict = "yes" if ok else ("no, a tie within tolerance" if tie else "no")
        msg = f"improvement over stable on {called(new_set)}: {verdict} ({what})"
        add(Check(f"improves_on_stable[{new_set}]", ok, cand_ppl, limit), msg)

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
