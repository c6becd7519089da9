"""The report's pictures, each written as a PNG and returned as a data URI for embedding."""

from __future__ import annotations

import base64
import io
import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: flows run on workers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tasks.evaluate.history import VersionScores, history_axis  # noqa: E402
from tasks.evaluate.naming import name_of  # noqa: E402
from tasks.evaluate.yardstick import Yardstick  # noqa: E402

DPI = 90
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
LABEL_STYLE = {  # marker, fill, colour of the model labels in every picture
    "candidate": ("o", True, "#d62728"),
    "stable": ("s", False, "#1f77b4"),
    "base": ("x", True, "#7f7f7f"),
    "teacher": ("*", True, "#2ca02c"),
}
Names = dict[str, str] | None


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def save(fig: Figure, path: Path | None) -> str:
    """Write `fig` to `path` (PNG, when given) and return the same bytes as a data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        path.write_bytes(data)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _set_colors(keys: list[str]) -> dict[str, str]:
    return {k: COLORS[i % len(COLORS)] for i, k in enumerate(keys)}


def plot_history(
    versions: list[VersionScores],
    current: dict[str, dict[str, dict[str, float]]],
    names: Names,
    path: Path,
    metrics: tuple[str, ...] = ("perplexity", "rougeL"),
) -> str:
    """Each metric by published version in time order, one line per eval set.

    x: the untrained base student, v1..vN, then this run's candidate; the stable version is
    shaded and the candidate hollow. The teacher's level on each set is a dotted line.
    """
    axis = history_axis(versions, current, metrics)
    ticks = [
        "base\n(untrained)" if t == "base" else t + ("\n(stable)" if i == axis.stable else "")
        for i, t in enumerate(axis.labels)
    ]
    last = len(ticks) - 1
    colors = _set_colors(list(axis.values[metrics[0]]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.0 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for key, ys in axis.values[metric].items():
            pts = [(x, y) for x, y in enumerate(ys) if y is not None and math.isfinite(y)]
            if not pts:
                continue
            c = colors[key]
            ax.plot(*zip(*pts, strict=True), color=c, marker="o", label=name_of(names, key))
            if pts[-1][0] == last:  # the candidate: hollow, larger
                ax.plot(last, pts[-1][1], "o", ms=11, mfc="white", mec=c, mew=2)
            teacher = current.get("teacher", {}).get(key, {}).get(metric)
            if teacher is not None:
                ax.axhline(teacher, color=c, linestyle=":", linewidth=1.2)
        if axis.stable is not None:
            ax.axvspan(axis.stable - 0.3, axis.stable + 0.3, color="#1f77b4", alpha=0.08)
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlim(-0.5, last + 0.5)
        if metric == "perplexity":  # spans teacher to untrained base: a log scale, plain labels
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(
                matplotlib.ticker.LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0))
            )
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        better = "lower is better" if metric in ("perplexity", "nll") else "higher is better"
        ax.set_title(f"{metric} by version ({better})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if "teacher" in current:
        handles.append(plt.Line2D([], [], color="black", linestyle=":"))
        labels.append("teacher on that set")
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels) or 1), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * math.ceil(len(labels) / 3), 1, 1))
    return save(fig, path)


def plot_deltas(
    deltas: dict[str, dict[str, dict[str, dict[str, float]]]], names: Names, path: Path
) -> str:
    """Candidate minus each reference per set and metric, with 95% bootstrap intervals."""
    metrics = (
        ("nll", "Δ NLL per token\n(below 0 is better)"),
        ("rougeL", "Δ ROUGE-L"),
        ("answer_match", "Δ answer match\n(checkable tasks)"),
        ("bleu", "Δ BLEU"),
    )
    sets = list(dict.fromkeys(s for by_set in deltas.values() for s in by_set))
    refs = list(deltas)
    height = 1.6 + 0.4 * len(sets) * max(1, len(refs))
    fig, axes = plt.subplots(1, len(metrics), figsize=(14, height), sharey=True, squeeze=False)
    step = 0.5 / max(1, len(refs))
    for ax, (metric, title) in zip(axes[0], metrics, strict=True):
        for r, ref in enumerate(refs):
            marker, _, color = LABEL_STYLE.get(ref, ("o", True, "black"))
            ys, means, errs = [], [], []
            for i, key in enumerate(sets):
                ci = deltas[ref].get(key, {}).get(metric)
                if ci is None:
                    continue
                ys.append(i + (r - (len(refs) - 1) / 2) * step)
                means.append(ci["mean_delta"])
                errs.append([ci["mean_delta"] - ci["ci_low"], ci["ci_high"] - ci["mean_delta"]])
            if ys:
                ax.errorbar(
                    means,
                    ys,
                    xerr=np.array(errs).T,
                    fmt=marker,
                    color=color,
                    capsize=3,
                    label=f"candidate − {ref}",
                )
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(sets)), [_wrap(name_of(names, s)) for s in sets], fontsize=8)
    axes[0][0].invert_yaxis()  # the new split on top, as in the tables
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels) or 1, fontsize=8)
    fig.tight_layout(rect=(0, 0.12 if len(sets) < 3 else 0.06, 1, 1))
    return save(fig, path)


def plot_entropy(results_by_label: dict[str, dict[str, Any]], names: Names, path: Path) -> str:
    """Per-token entropy of each model on the reference answers, one panel per set."""
    sets = list(dict.fromkeys(s for r in results_by_label.values() for s in r["sets"]))
    cols = min(3, len(sets))
    rows = math.ceil(len(sets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, sets, strict=False):
        per_label = {
            label: results["sets"].get(key, {}).get("token_entropies", [])
            for label, results in results_by_label.items()
        }
        values = [e for ent in per_label.values() for e in ent]
        # Shared bin edges, so the models' distributions line up bar for bar.
        bins = np.linspace(min(values), max(values) + 1e-9, 31) if values else 30
        for label, ent in per_label.items():
            if ent:
                color = LABEL_STYLE.get(label, ("", True, None))[2]
                ax.hist(
                    ent,
                    bins=bins,
                    histtype="step",
                    linewidth=1.6,
                    density=True,
                    label=label,
                    color=color,
                )
        ax.set_title(_wrap(name_of(names, key), 40), fontsize=9)
        ax.set_xlabel("entropy per answer token (nats)", fontsize=8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(sets) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return save(fig, path)


def plot_yardstick(ys: dict[str, Yardstick], names: Names, path: Path | None) -> str:
    """Share of the teacher's ROUGE-L and BLEU kept per set, against size ÷ the teacher's."""
    sets = list(dict.fromkeys(r.eval_set for y in ys.values() for r in y.sets))
    colors = _set_colors(sets)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    labels = list(ys)
    drawn = 0
    for ax, metric, title in zip(axes, ("rougeL", "bleu"), ("ROUGE-L", "BLEU"), strict=True):
        ax.plot([1.0], [1.0], "*", ms=16, color=LABEL_STYLE["teacher"][2], label="teacher")
        for li, (label, y) in enumerate(ys.items()):
            size = y.size_ratio
            if size is None:
                continue
            marker, filled, _ = LABEL_STYLE.get(label, ("o", True, None))
            for row in y.sets:
                kept = row.kept.get(metric)
                if kept is None:
                    continue
                # Models share one size: a small sideways offset keeps their points apart.
                x = size + (li - (len(labels) - 1) / 2) * 0.025
                c = colors[row.eval_set]
                ax.plot(x, kept, marker, ms=9, color=c, mfc=c if filled else "white", mew=2)
                drawn += 1
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("size: weight-file bytes ÷ the teacher's")
        ax.set_title(f"{title} kept (student ÷ teacher)", fontsize=10)
        ax.grid(alpha=0.3)
    if not drawn:
        fig.suptitle("the teacher scores 0 on every set: no share to show", fontsize=10)
    axes[0].set_ylabel("share of the teacher's score")
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    handles = [plt.Line2D([], [], color=colors[s], linewidth=6) for s in sets]
    text = [_wrap(name_of(names, s), 40) for s in sets]
    for label in labels:
        marker, filled, _ = LABEL_STYLE.get(label, ("o", True, None))
        handles.append(
            plt.Line2D(
                [],
                [],
                marker=marker,
                linestyle="",
                color="black",
                mfc="black" if filled else "white",
                ms=8,
            )
        )
        text.append(label)
    handles.append(plt.Line2D([], [], marker="*", linestyle="", ms=12, color="#2ca02c"))
    text.append("teacher (100%, size 1)")
    fig.legend(handles, text, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.74, 1))
    return save(fig, path)
