"""The evaluation report: markdown with the gate's reasons, tables and embedded pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.artifact_store import ArtifactStore
from storage.layout import layout
from tasks.evaluate.gate import GateDecision
from tasks.evaluate.history import VersionScores
from tasks.evaluate.naming import name_of
from tasks.evaluate.plots import plot_deltas, plot_entropy, plot_history, plot_yardstick
from tasks.evaluate.run import load_results, metrics_by_set
from tasks.evaluate.yardstick import measure, summary_line, yardstick_rows

TABLE_METRICS = (
    "perplexity",
    "bleu",
    "rouge1",
    "rouge2",
    "rougeL",
    "exact_match",  # only on sets with checkable tasks (the fixed benchmark)
    "answer_match",  # the same tasks, the answer anywhere in the first line
    "mean_entropy",
    "ece",
)
LABEL_ORDER = ("candidate", "stable", "base", "teacher")


def _ordered(labels: list[str]) -> list[str]:
    return sorted(labels, key=lambda x: (LABEL_ORDER.index(x) if x in LABEL_ORDER else 99, x))


def summary_rows(
    results_by_label: dict[str, dict[str, Any]], names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per (eval set, model) with the headline metrics; sets in evaluation order."""
    rows = []
    for label in _ordered(list(results_by_label)):
        for position, (key, data) in enumerate(results_by_label[label]["sets"].items()):
            m = data["metrics"]
            rows.append(
                {
                    "eval set": name_of(names, key),
                    "model": label,
                    **{k: m.get(k) for k in TABLE_METRICS},
                    "_order": position,
                }
            )
    rows.sort(key=lambda r: r["_order"])  # stable sort: models stay in label order per set
    return [{k: v for k, v in r.items() if k != "_order"} for r in rows]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"  # the metric does not apply to this set
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    cells = (" | ".join(_fmt(r[k]).replace("|", "/") for k in keys) for r in rows)
    return out + [f"| {c} |" for c in cells]


def _teacher_section(
    results: dict[str, dict[str, Any]], names: dict[str, str] | None, new_set: str | None, out: Path
) -> list[str]:
    teacher = results.get("teacher")
    if teacher is None:
        return ["## Against the teacher", "", "No teacher was evaluated in this run.", ""]
    ys = {label: measure(r, teacher) for label, r in results.items() if label != "teacher"}
    cand = ys.get("candidate")
    lines = ["## Against the teacher", ""]
    lines += [f"Teacher: `{teacher.get('model') or teacher.get('preset')}`."]
    if cand is not None and cand.size_ratio is not None:
        lines += [
            f"Size: the student's weight files are {(cand.student_bytes or 0) / 1e6:.1f} MB, "
            f"the teacher's {(cand.teacher_bytes or 0) / 1e6:.1f} MB "
            f"({cand.size_ratio:.2f}× the teacher's, both as stored)."
        ]
    if cand is not None and new_set:
        lines += ["", f"**Candidate {summary_line(cand, names, new_set)}.**"]
    lines += [
        "",
        "Quality kept is the student's score ÷ the teacher's on the same prompts (ROUGE-L, "
        "BLEU: text, comparable across tokenizers; n/a where the teacher scores 0). Per-token "
        "perplexities compare only when the two tokenizers are the same.",
        "",
    ]
    lines += _table(yardstick_rows(ys, names))
    uri = plot_yardstick(ys, names, out / "teacher.png")
    return lines + ["", f"![Quality kept against size]({uri})", ""]


def write_report(
    out_dir: str | Path,
    *,
    student: str,
    results_paths: dict[str, str],
    deltas: dict[str, dict[str, dict[str, dict[str, float]]]],
    decision: GateDecision,
    history: list[VersionScores] | None = None,
    names: dict[str, str] | None = None,
    new_set: str | None = None,
) -> str:
    """Write report.md (pictures embedded as data URIs) and its PNGs; returns the markdown path.

    `results_paths` maps model labels (candidate, stable, base, teacher) to results files;
    `history` holds stored scores of published versions; `names` maps set keys to names.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = names or decision.set_names or {}
    results = {label: load_results(p) for label, p in results_paths.items()}
    current = {label: metrics_by_set(r) for label, r in results.items()}
    verdict = "PROMOTE" if decision.promote else "REJECT"
    lines = [f"# Evaluation of {student}: {verdict}", "", "## Gate", ""]
    lines += [f"- {r}" for r in decision.reasons] + [""]
    lines += _teacher_section(results, names, new_set, out)
    lines += ["## Metrics", ""] + _table(summary_rows(results, names)) + [""]
    delta_rows = [
        {"eval set": name_of(names, s), "candidate −": ref, "metric": m, **ci}
        for ref, by_set in deltas.items()
        for s, by_metric in by_set.items()
        for m, ci in by_metric.items()
    ]
    lines += ["## Paired deltas (candidate − reference, 95% bootstrap CI)", ""]
    lines += _table(delta_rows) + [""]
    pictures = {
        "Metrics by version": plot_history(history or [], current, names, out / "history.png"),
        "Per-set deltas with 95% bootstrap CIs": plot_deltas(deltas, names, out / "deltas.png"),
        "Token entropy distributions": plot_entropy(results, names, out / "entropy.png"),
    }
    captions = {
        "Metrics by version": "The untrained base, each published version in order, then this "
        "candidate (hollow); the stable version is shaded; dotted: the teacher on that set.",
        "Per-set deltas with 95% bootstrap CIs": "Candidate minus each reference; an interval "
        "that excludes 0 is a significant difference.",
        "Token entropy distributions": "How unsure each model is on the reference answers.",
    }
    for title, uri in pictures.items():
        lines += [f"## {title}", "", captions[title], "", f"![{title}]({uri})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    # Readable from any host: pushed to the shared store (`eval/runs/...`) when one is set.
    ArtifactStore.from_settings(local_root=layout().data_dir).push(out)
    return str(report.resolve())
