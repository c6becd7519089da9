"""The evaluate stage's result: the gate's decision, why, and the metrics per model and set."""

from __future__ import annotations

from typing import Literal

from tasks.evaluate.gate import GateDecision
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
    def promote(self) -> bool:
        """Whether the gate promotes the candidate."""
        return self.decision == "promote"
