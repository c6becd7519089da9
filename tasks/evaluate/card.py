"""The model card's evaluation results (model-index metadata and a markdown section)."""

from __future__ import annotations

import math
from typing import Any

from tasks.evaluate.plots import plot_yardstick
from tasks.evaluate.yardstick import from_card_fields

# metric key -> (model-index type, display name, digits); the order is the table's order.
CARD_METRICS: dict[str, tuple[str, str, int]] = {
    "perplexity": ("perplexity", "Perplexity", 3),
    "bleu": ("bleu", "BLEU", 2),
    "rouge1": ("rouge", "ROUGE-1", 4),
    "rouge2": ("rouge", "ROUGE-2", 4),
    "rougeL": ("rouge", "ROUGE-L", 4),
    "exact_match": ("exact_match", "Exact match (checkable tasks)", 4),
    "answer_match": ("answer_match", "Answer in the reply (checkable tasks)", 4),
    "mean_entropy": ("entropy", "Mean token entropy (nats)", 4),
    "low_conf_share": ("low_confidence_share", "Share of tokens with p < 0.3", 4),
    "ece": ("ece", "Expected calibration error", 4),
}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def model_index(student: str, metrics_by_set: dict[str, dict[str, float]]) -> dict[str, Any]:
    """`{"model-index": [...]}` for the card's YAML front matter, one result per eval set."""
    if not metrics_by_set:
        raise ValueError("model_index needs metrics of at least one eval set")
    results = []
    for eval_set, metrics in metrics_by_set.items():
        entries = [
            {"type": kind, "name": name, "value": round(float(metrics[key]), digits)}
            for key, (kind, name, digits) in CARD_METRICS.items()
            if _finite(metrics.get(key))
        ]
        if not entries:
            continue
        results.append(
            {
                "task": {"type": "text-generation", "name": "Text Generation"},
                "dataset": {"name": eval_set, "type": eval_set, "split": "test"},
                "metrics": entries,
            }
        )
    return {"model-index": [{"name": student, "results": results}]}


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def teacher_lines(metrics_by_set: dict[str, dict[str, float]]) -> list[str]:
    """ "Against the teacher": its scores beside the model's, shares kept, size, a picture."""
    y = from_card_fields("teacher", metrics_by_set)
    if y is None:
        return ["", "## Against the teacher", "", "The teacher was not evaluated with this model."]
    lines = ["", "## Against the teacher", ""]
    if y.size_ratio is not None:
        lines += [
            f"The weight files are {y.size_ratio:.2f}× the teacher's "
            f"({(y.student_bytes or 0) / 1e6:.1f} MB vs {(y.teacher_bytes or 0) / 1e6:.1f} MB "
            "as stored). Quality kept: this model's score ÷ the teacher's on the same prompts.",
            "",
        ]
    lines += [
        "| eval set | perplexity (teacher) | perplexity | ROUGE-L (teacher) | ROUGE-L "
        "| ROUGE-L kept | BLEU (teacher) | BLEU | BLEU kept |",
        "|---" * 9 + "|",
    ]
    for row in y.sets:
        t, s = row.teacher, row.student
        cells = [
            row.eval_set,
            *(f"{d.get(k, float('nan')):.4g}" for d, k in ((t, "perplexity"), (s, "perplexity"))),
            *(f"{d.get('rougeL', float('nan')):.4g}" for d in (t, s)),
            _share(row.kept.get("rougeL")),
            *(f"{d.get('bleu', float('nan')):.4g}" for d in (t, s)),
            _share(row.kept.get("bleu")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    uri = plot_yardstick({"this model": y}, None, None)
    return lines + ["", f"![Quality kept against size]({uri})"]


def render_eval_section(
    student: str,
    metrics_by_set: dict[str, dict[str, float]],
    decision: dict[str, Any] | None = None,
) -> str:
    """A markdown "Evaluation results" section: one row per set, then the gate's reasons."""
    index = model_index(student, metrics_by_set)["model-index"][0]
    columns = [name for _, name, _ in CARD_METRICS.values()]
    lines = [
        "## Evaluation results",
        "",
        f"Metrics of `{student}` per evaluation set (perplexity over answer tokens, "
        "token-weighted; BLEU corpus-level; ROUGE F1 with stemming; greedy decoding).",
        "",
        "| eval set | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for result in index["results"]:
        values = {m["name"]: m["value"] for m in result["metrics"]}
        cells = [str(values.get(c, "")) for c in columns]
        lines.append(f"| {result['dataset']['name']} | " + " | ".join(cells) + " |")
    lines += teacher_lines(metrics_by_set)
    if decision is not None:
        verdict = "promoted" if decision.get("promote") else "rejected"
        lines += ["", f"**Release gate:** {verdict} ({decision.get('rule', 'stable')} rule).", ""]
        lines += [f"- {reason}" for reason in decision.get("reasons", [])]
    return "\n".join(lines) + "\n"
