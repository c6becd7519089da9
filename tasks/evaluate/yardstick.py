"""The teacher as yardstick: how much of the teacher's quality a student keeps, at what size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.evaluate.naming import name_of

# Text metrics compare across tokenizers; per-token perplexity only when the vocabularies match.
KEPT_METRICS = ("rougeL", "bleu")
SHOWN = ("perplexity", "rougeL", "bleu")
CARD_PREFIX = "teacher_"


def kept_share(metric: str, student: float, teacher: float) -> float | None:
    """Student ÷ teacher for a higher-is-better metric (teacher ÷ student for perplexity).

    None when the teacher scores zero: there is nothing to keep a share of.
    """
    if metric in ("perplexity", "nll"):
        return teacher / student if student > 0 else None
    return student / teacher if teacher > 0 else None


@dataclass(frozen=True)
class SetYardstick:
    """One eval set: teacher and student values and the student's share of the teacher's."""

    eval_set: str
    teacher: dict[str, float]
    student: dict[str, float]
    kept: dict[str, float | None]

    @property
    def perplexity_ratio(self) -> float | None:
        """Student perplexity ÷ teacher's (2.0 = twice as perplexed)."""
        t, s = self.teacher.get("perplexity"), self.student.get("perplexity")
        return s / t if t and s is not None else None


@dataclass(frozen=True)
class Yardstick:
    """A student's results set beside the teacher's, with the size of both."""

    teacher: str
    student_bytes: int | None
    teacher_bytes: int | None
    sets: tuple[SetYardstick, ...]

    @property
    def size_ratio(self) -> float | None:
        """Student weight-file bytes ÷ the teacher's."""
        if not self.student_bytes or not self.teacher_bytes:
            return None
        return self.student_bytes / self.teacher_bytes

    def by_set(self) -> dict[str, SetYardstick]:
        """Eval-set key -> its comparison."""
        return {s.eval_set: s for s in self.sets}


def measure(student: dict[str, Any], teacher: dict[str, Any]) -> Yardstick:
    """Compare two results dicts (as `evaluate_model` writes them) on the sets both scored."""
    rows = []
    for name, data in student["sets"].items():
        if name not in teacher["sets"]:
            continue
        s, t = data["metrics"], teacher["sets"][name]["metrics"]
        rows.append(
            SetYardstick(
                eval_set=name,
                teacher={m: float(t[m]) for m in SHOWN if m in t},
                student={m: float(s[m]) for m in SHOWN if m in s},
                kept={
                    m: kept_share(m, float(s[m]), float(t[m]))
                    for m in (*KEPT_METRICS, "perplexity")
                    if m in s and m in t
                },
            )
        )
    label = teacher.get("model") or teacher.get("preset") or "teacher"
    return Yardstick(
        str(label), student.get("weight_bytes"), teacher.get("weight_bytes"), tuple(rows)
    )


def card_fields(y: Yardstick) -> dict[str, dict[str, float]]:
    """Per set, the teacher's values and the kept shares as flat numbers (the card reads them)."""
    out: dict[str, dict[str, float]] = {}
    for row in y.sets:
        fields = {f"{CARD_PREFIX}{m}": v for m, v in row.teacher.items()}
        fields |= {f"{m}_kept": v for m, v in row.kept.items() if v is not None}
        if y.size_ratio is not None:
            fields["size_vs_teacher"] = y.size_ratio
            fields["weight_bytes"] = float(y.student_bytes or 0)
            fields["teacher_weight_bytes"] = float(y.teacher_bytes or 0)
        out[row.eval_set] = fields
    return out


def from_card_fields(teacher: str, by_set: dict[str, dict[str, float]]) -> Yardstick | None:
    """The inverse of `card_fields` over a card's metrics; None when no set has teacher values."""
    rows: list[SetYardstick] = []
    sizes: tuple[int | None, int | None] = (None, None)
    for eval_set, m in by_set.items():
        t = {k.removeprefix(CARD_PREFIX): v for k, v in m.items() if k.startswith(CARD_PREFIX)}
        t = {k: v for k, v in t.items() if k in SHOWN}
        if not t:
            continue
        kept: dict[str, float | None] = {
            k.removesuffix("_kept"): v for k, v in m.items() if k.endswith("_kept")
        }
        rows.append(SetYardstick(eval_set, t, {k: m[k] for k in SHOWN if k in m}, kept))
        if m.get("teacher_weight_bytes"):
            sizes = (int(m["weight_bytes"]), int(m["teacher_weight_bytes"]))
    return Yardstick(teacher, *sizes, tuple(rows)) if rows else None


def _pct(value: float | None, why: str = " (teacher scores 0)") -> str:
    return f"n/a{why}" if value is None else f"{value:.0%}"


def summary_line(y: Yardstick, names: dict[str, str] | None, eval_set: str) -> str:
    """One sentence for logs and summaries: the student against the teacher on `eval_set`."""
    row = y.by_set().get(eval_set)
    size = f"{y.size_ratio:.2f}× the teacher's size" if y.size_ratio else "size unknown"
    if row is None:
        return f"vs teacher: no shared scores on {name_of(names, eval_set)}; {size}"
    parts = [
        f"ROUGE-L kept {_pct(row.kept.get('rougeL'))}",
        f"BLEU kept {_pct(row.kept.get('bleu'))}",
    ]
    if row.perplexity_ratio is not None:
        parts.append(f"perplexity {row.perplexity_ratio:.2f}× the teacher's")
    return f"vs teacher on {name_of(names, eval_set)}: {', '.join(parts)}; at {size}"


def yardstick_rows(ys: dict[str, Yardstick], names: dict[str, str] | None) -> list[dict[str, Any]]:
    """Table rows: per model label and set, teacher vs student values and the shares kept."""
    rows = []
    for label, y in ys.items():
        for row in y.sets:
            rows.append(
                {
                    "eval set": name_of(names, row.eval_set),
                    "model": label,
                    "perplexity (teacher)": row.teacher.get("perplexity"),
                    "perplexity": row.student.get("perplexity"),
                    "ROUGE-L (teacher)": row.teacher.get("rougeL"),
                    "ROUGE-L": row.student.get("rougeL"),
                    "ROUGE-L kept": _pct(row.kept.get("rougeL"), ""),
                    "BLEU kept": _pct(row.kept.get("bleu"), ""),
                    "size ÷ teacher": f"{y.size_ratio:.2f}" if y.size_ratio else "n/a",
                }
            )
    return rows
