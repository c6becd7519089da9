"""The evaluation report: markdown with plots across versions, A/B deltas and entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: flows run on workers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tasks.evaluate.run import load_results  # noqa: E402

TABLE_METRICS = ("perplexity", "bleu", "rouge1", "rouge2", "rougeL", "mean_entropy", "ece")


def summary_rows(results_by_label: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (eval set, model label) with the headline metrics (for tables/artifacts)."""
    rows = []
    for label, results in results_by_label.items():
        for eval_set, data in results["sets"].items():
            m = data["metrics"]
            rows.append(
                {"eval_set": eval_set, "model": label, **{k: m.get(k) for k in TABLE_METRICS}}
            )
    return sorted(rows, key=lambda r: (r["eval_set"], r["model"]))


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    out += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in rows]
    return out


def _point_name(h: dict[str, Any]) -> str:
    # Unversioned rows (base, candidates before publishing) recur: tell them apart by time.
    if h.get("version"):
        return f"v{h['version']}"
    when = str(h.get("created_at") or "")[5:16].replace("T", " ")
    return f"{h['label']} {when}".strip()


def plot_history(history: list[dict[str, Any]], path: Path) -> Path:
    """Perplexity and ROUGE-L per eval set across versions (Evaluation rows, oldest first)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("perplexity", "rougeL"), strict=True):
        for eval_set in sorted({h["eval_set"] for h in history}):
            points = [h for h in history if h["eval_set"] == eval_set and metric in h["metrics"]]
            xs = [_point_name(h) for h in points]
            ax.plot(xs, [h["metrics"][metric] for h in points], marker="o", label=eval_set)
        ax.set_title(f"{metric} across versions")
        ax.tick_params(axis="x", rotation=45)
    if history:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_deltas(deltas: dict[str, dict[str, dict[str, dict[str, float]]]], path: Path) -> Path:
    """Candidate-minus-reference deltas per set with their bootstrap CIs."""
    metrics = ("nll", "rougeL", "bleu")
    fig, axes = plt.subplots(1, len(metrics), figsize=(13, 4))
    for ax, metric in zip(axes, metrics, strict=True):
        labels, means, errs = [], [], []
        for ref, by_set in deltas.items():
            for eval_set, ci in sorted(by_set.items()):
                c = ci[metric]
                labels.append(f"{eval_set} vs {ref}")
                means.append(c["mean_delta"])
                errs.append([c["mean_delta"] - c["ci_low"], c["ci_high"] - c["mean_delta"]])
        y = np.arange(len(labels))
        ax.errorbar(means, y, xerr=np.array(errs).T if errs else None, fmt="o", capsize=4)
        ax.axvline(0.0, color="grey", linestyle="--")
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(f"delta {metric} (95% CI)" + (" lower is better" if metric == "nll" else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_entropy(results_by_label: dict[str, dict[str, Any]], path: Path) -> Path:
    """Histograms of per-token entropy on the reference answers, one panel per eval set."""
    sets = sorted({s for r in results_by_label.values() for s in r["sets"]})
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.5), squeeze=False)
    for ax, eval_set in zip(axes[0], sets, strict=True):
        per_label = {
            label: results["sets"].get(eval_set, {}).get("token_entropies", [])
            for label, results in results_by_label.items()
        }
        values = [e for ent in per_label.values() for e in ent]
        # Shared bin edges, so the models' distributions line up bar for bar.
        bins = np.linspace(min(values), max(values) + 1e-9, 31) if values else 30
        for label, ent in per_label.items():
            if ent:
                ax.hist(ent, bins=bins, alpha=0.45, label=label, density=True)
        ax.set_title(f"token entropy: {eval_set}", fontsize=9)
        ax.set_xlabel("entropy (nats)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(
    out_dir: str | Path,
    *,
    student: str,
    results_paths: dict[str, str],
    deltas: dict[str, dict[str, dict[str, dict[str, float]]]],
    decision: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
) -> str:
    """Write report.md and its PNGs into `out_dir`; returns the markdown file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {label: load_results(p) for label, p in results_paths.items()}
    # Without stored history (first run, no database), plot this evaluation's own numbers.
    history = history or [
        {"version": None, "label": r["model"], "eval_set": r["eval_set"], "metrics": r}
        for r in summary_rows(results)
    ]
    plots = {
        "Metrics across versions": plot_history(history, out / "history.png"),
        "Per-set deltas with 95% bootstrap CIs": plot_deltas(deltas, out / "deltas.png"),
        "Token entropy distributions": plot_entropy(results, out / "entropy.png"),
    }
    verdict = "PROMOTE" if decision.get("promote") else "REJECT"
    lines = [f"# Evaluation of {student}: {verdict}", ""]
    lines += [f"- {r}" for r in decision.get("reasons", [])] + ["", "## Metrics", ""]
    lines += _table(summary_rows(results)) + ["", "## Paired deltas (candidate - reference)", ""]
    delta_rows = [
        {"reference": ref, "eval_set": s, "metric": m, **ci}
        for ref, by_set in deltas.items()
        for s, by_metric in sorted(by_set.items())
        for m, ci in by_metric.items()
    ]
    lines += _table(delta_rows) + [""]
    for title, png in plots.items():
        lines += [f"## {title}", "", f"![{title}]({png.name})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return str(report.resolve())
