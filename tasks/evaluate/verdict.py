"""The evaluate stage's result: the gate's decision, why, and the metrics per model and set."""

from __future__ import annotations

from typing import Literal

from tasks.evaluate.gate import ANSWER_METRICS, Deltas, GateDecision
from tasks.results import StageResult

MetricsBySet = dict[str, dict[str, float]]  # readable eval-set name -> metric -> value


class Verdict(StageResult):
    """What evaluating a candidate decided, and the evidence the card and the CLI show."""

    decision: Literal["promote", "reject"]
    """The release gate's decision."""
    gate: GateDecision
    """The gate's full decision: reasons, every check, the rule and reference it used."""
    detail: str
    """The reasons joined in one line, in full (never cut)."""
    new_set: str
    """Key of the new snapshot's test split."""
    new_set_name: str
    """Its readable name."""
    set_names: dict[str, str]
    """Eval-set key -> readable name."""
    teacher: str
    """How the candidate compares with the teacher (one line)."""
    answers: str = ""
    """How the candidate's answers compare with its reference on the fixed benchmark (one line)."""
    metrics: dict[str, MetricsBySet]
    """Headline metrics per model label (candidate, stable, base, teacher), by set name."""
    report_path: str
    """The evaluation report (markdown with plots)."""
    results_paths: dict[str, str]
    """Model label -> its results JSON."""
    evaluation_ids: list[int]
    """The stored Evaluation rows (linked to the version once it is published)."""

    @property
    def reasons(self) -> list[str]:
        """The gate's reasons, one a line."""
        return self.gate.reasons

    @property
    def why(self) -> str:
        """The decision and the checks that failed, in one line (every reason is in `detail`)."""
        failed = sum(not c.passed for c in self.gate.checks)
        return "; ".join(self.gate.reasons[: 1 + failed])

    @property
    def promote(self) -> bool:
        """Whether the gate promotes the candidate."""
        return self.decision == "promote"


LABELS = {"rougeL": "ROUGE-L", "answer_match": "answer match", "exact_match": "exact match"}


def answers_line(deltas: Deltas, set_key: str, set_name: str, reference: str) -> str:
    """One line: the candidate's answer metrics minus the reference's on one set, and a verdict.

    better: some interval lies wholly above 0 and none wholly below; worse: one lies wholly
    below 0; otherwise no clear difference.
    """
    found = deltas.get(set_key)
    if not found:
        return f"answers on {set_name}: not evaluated"
    cis = {m: found[m] for m in ANSWER_METRICS if m in found}
    parts = [
        f"{LABELS[m]} {ci['mean_delta']:+.3f} [{ci['ci_low']:+.3f}, {ci['ci_high']:+.3f}]"
        for m, ci in cis.items()
    ]
    if any(ci["ci_high"] < 0 for ci in cis.values()):
        verdict = f"worse than {reference}"
    elif any(ci["ci_low"] > 0 for ci in cis.values()):
        verdict = f"better than {reference}"
    else:
        verdict = f"no clear difference from {reference}"
    n = int(next(iter(cis.values()))["n"]) if cis else 0
    return f"answers on {set_name} (n={n}, vs {reference}): {', '.join(parts)}: {verdict}"
