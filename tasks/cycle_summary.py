"""What a perpetual cycle reports: one row per student, the summary table, the final state."""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect.states import Completed, Failed, State

from tasks.prepare.summary import SnapshotSummary
from tasks.results import StageResult

Status = Literal["published", "rejected", "skipped", "failed"]


class StudentRow(StageResult):
    """The outcome of one student in one cycle (a row of the summary table)."""

    student: str
    """The student preset."""
    status: Status
    """published, rejected, skipped or failed."""
    seconds: float | None = None
    """Wall time of the student's work; None when it did not run."""
    version: int | None = None
    """The version published, or the one that made the cycle skip the student."""
    decision: Literal["promote", "reject"] | None = None
    """The release gate's decision, when the candidate was evaluated."""
    detail: str | None = None
    """Why: the gate's reasons in full, the skip reason or the failure message."""
    why: str | None = None
    """The gate's decision and the checks that failed, in one line."""
    teacher: str | None = None
    """How the candidate compares with the teacher (one line)."""
    answers: str | None = None
    """How the candidate's answers compare with its reference on the fixed benchmark."""
    report: str | None = None
    """Path of the evaluation report."""
    files: list[str] = []
    """Names of the published files."""
    phone: str | None = None
    """Which file phones get and why."""
    teacher_cache: dict[str, float] | None = None
    """Teacher-cache counts of the training (hits, misses, computed, hit_rate), seconds per part."""


class CycleSummary(StageResult):
    """The result of a perpetual cycle: the snapshot it ran on and a row per student."""

    snapshot: SnapshotSummary
    """The snapshot prepared for this cycle."""
    students: list[StudentRow]
    """One row per configured student, in configuration order."""


class TimedRow:
    """A summary row for one student that knows how long its work took."""

    def __init__(self, student: str) -> None:
        self.student = student
        self.started = time.monotonic()

    def done(self, status: Status, **fields: Any) -> StudentRow:
        """The finished row: student, status, seconds and the given fields."""
        seconds = round(time.monotonic() - self.started, 1)
        return StudentRow(student=self.student, status=status, seconds=seconds, **fields)


def timed_row(student: str) -> TimedRow:
    """Start timing the row of `student`."""
    return TimedRow(student)


def cycle_state(summary: CycleSummary) -> State[CycleSummary]:
    """Completed when no student failed, else Failed ("PartiallyFailed" if some succeeded)."""
    rows = summary.students
    failed = [r.student for r in rows if r.status == "failed"]
    counts = ", ".join(
        f"{n} {s}"
        for s in ("published", "rejected", "skipped", "failed")
        if (n := sum(r.status == s for r in rows))
    )
    if not failed:
        return Completed(data=summary, message=counts or "no students configured")
    name = "Failed" if len(failed) == len(rows) else "PartiallyFailed"
    return Failed(name=name, data=summary, message=f"{counts}; failed: {', '.join(failed)}")


def summary_of(state: State[Any]) -> CycleSummary | None:
    """The summary a finished cycle's state carries; None when the flow crashed before it."""
    result: object = state.result(raise_on_failure=False)
    return result if isinstance(result, CycleSummary) else None


SUMMARY_COLUMNS = ("student", "status", "version", "decision", "detail", "teacher", "seconds")


def summary_markdown(snapshot: SnapshotSummary, rows: list[StudentRow]) -> str:
    """The cycle's summary as a markdown table (the Prefect artifact and the CLI's printout)."""
    head = (
        f"### Perpetual cycle on snapshot {snapshot.snapshot_id} "
        f"({snapshot.new_records} new records, splits {snapshot.split_sizes})\n\n"
    )
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    for row in rows:
        values = [getattr(row, c) for c in SUMMARY_COLUMNS]
        cells = ["" if v is None else str(v) for v in values]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return head + "\n".join(lines) + "\n"
