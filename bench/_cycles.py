"""`bench/quality.py --cycles N`: N perpetual cycles, the published version after each.

The real loop on the SmolLM2 pair: the service under uvicorn, the phone simulator uploading a
new batch of feedback before every cycle (a new seed each time), then the whole perpetual
cycle (prepare → distill → evaluate → gate → export → publish) with the demo's settings.
After each cycle the version phones run (the student's stable channel, or the base before
any release) is compared with the base and the teacher on every fixed-benchmark task, from
the cycle's own evaluation files. Prints a JSON line per cycle, a markdown table and a PNG
of the curve.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sqlalchemy import select  # noqa: E402

from storage.db import get_database  # noqa: E402
from storage.models import Channel, ModelVersion  # noqa: E402
from tasks.evaluate.compare import compare_results  # noqa: E402
from tasks.evaluate.run import load_results  # noqa: E402
from tasks.evaluate.sets import FIXED_SET_NAME  # noqa: E402
from tasks.evaluate.yardstick import kept_share  # noqa: E402
from tasks.models.load import smollm2_gguf_path  # noqa: E402

METRICS = ("rougeL", "answer_match", "perplexity")


@dataclass(frozen=True)
class CyclePlan:
    """What each cycle trains on and how."""

    cycles: int
    student: str
    teacher: str
    steps: int
    phones: int
    interactions: int


def run_cycles(plan: CyclePlan, out_dir: Path | None = None) -> list[dict[str, Any]]:
    """Run the cycles; returns one row per cycle (also printed as JSON lines)."""
    out = out_dir or Path(tempfile.mkdtemp(prefix="bench-cycles-"))
    os.environ["DISTILLERY_DATA_DIR"] = str(out / "data")
    os.environ.setdefault("DISTILLERY_REGISTRY", "local")
    from demo.run import free_port, running_service
    from flows.perpetual import perpetual_cycle
    from simulator.phones import SimulationConfig, run_simulation
    from tasks.cycle_summary import summary_of

    rows: list[dict[str, Any]] = []
    live: Path | None = None  # results of the version phones run (None: the base)
    with running_service(free_port(), out / "service.log") as url:
        for cycle in range(1, plan.cycles + 1):
            sim = SimulationConfig(
                phones=plan.phones, interactions=plan.phones * plan.interactions, seed=cycle
            )
            run_simulation(url, sim)
            state = perpetual_cycle(cycle_config(plan), return_state=True)
            summary = summary_of(state)
            row = (
                next((r for r in summary.students if r.student == plan.student), None)
                if (summary)
                else None
            )
            if row is None or row.report is None:
                raise RuntimeError(f"cycle {cycle} evaluated nothing: {state.message}")
            results = Path(row.report).parent.parent  # <run>/report/report.md → <run>
            if row.status == "published":
                live = results / "candidate.json"
            rows.append(measure_cycle(cycle, row.status, row.version, live, results, plan.student))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def cycle_config(plan: CyclePlan) -> Any:
    """The demo's cycle (demo/run.py) with the bench's student, teacher and steps."""
    from demo.run import DemoOptions, demo_config

    options = DemoOptions(teacher=plan.teacher, student=plan.student, max_steps=plan.steps)
    return demo_config(options)


def measure_cycle(
    cycle: int, status: str, version: int | None, live: Path | None, run_dir: Path, student: str
) -> dict[str, Any]:
    """The fixed-benchmark scores of the live version, the base and the teacher after a cycle."""
    base = load_results(run_dir / "base.json")
    teacher = load_results(run_dir / "teacher.json")
    current = load_results(live) if live else base
    fixed = {k: r["sets"][FIXED_SET_NAME]["metrics"] for k, r in
             (("live", current), ("base", base), ("teacher", teacher))}  # fmt: skip
    deltas = compare_results(
        {"sets": {FIXED_SET_NAME: current["sets"][FIXED_SET_NAME]}},
        {"sets": {FIXED_SET_NAME: base["sets"][FIXED_SET_NAME]}},
    )[FIXED_SET_NAME]
    phone_bytes = phone_file_bytes(student)
    teacher_bytes = smollm2_gguf_path().stat().st_size
    return {
        "figure": "cycle",
        "cycle": cycle,
        "outcome": status,
        "live_version": stable_version(student),
        "candidate_version": version,
        "examples": int(fixed["base"]["examples"]),
        **{f"{who}_{m}": fixed[who].get(m) for who in fixed for m in METRICS},
        "vs_base": {m: deltas[m] for m in ("rougeL", "answer_match") if m in deltas},
        "teacher_rougeL_kept": kept_share(
            "rougeL", fixed["live"]["rougeL"], fixed["teacher"]["rougeL"]
        ),
        "phone_file_bytes": phone_bytes,
        "teacher_file_bytes": teacher_bytes,
        "bytes_vs_teacher": phone_bytes / teacher_bytes if phone_bytes else None,
    }


def stable_version(student: str) -> int | None:
    """The version on the student's stable channel; None before the first release."""
    with get_database().transaction() as session:
        channel = session.scalar(
            select(Channel).where(Channel.student == student, Channel.name == "stable")
        )
        return channel.model_version.version if channel and channel.model_version else None


def phone_file_bytes(student: str) -> int | None:
    """Bytes of the merged GGUF phones download for the stable version (None before one)."""
    with get_database().transaction() as session:
        channel = session.scalar(
            select(Channel).where(Channel.student == student, Channel.name == "stable")
        )
        version: ModelVersion | None = channel.model_version if channel else None
        files = version.files if version else []
    merged = [f for f in files if f.get("role", "merged") == "merged"]
    return int(merged[0]["size"]) if merged else None


def print_table(rows: list[dict[str, Any]]) -> None:
    """The per-cycle table in markdown."""

    def ci(d: dict[str, float] | None) -> str:
        return f"{d['mean_delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "—"

    print(
        "\n| cycle | outcome | live | ROUGE-L live / base / teacher | Δ ROUGE-L vs base "
        "| answer match live / base / teacher | Δ answer match vs base "
        "| perplexity live / base / teacher | kept of teacher's ROUGE-L | phone file |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = (
            f"{r['phone_file_bytes'] / 1e6:.1f} MB ({r['bytes_vs_teacher']:.2f}× teacher)"
            if r["phone_file_bytes"]
            else "—"
        )
        live = f"v{r['live_version']}" if r["live_version"] else "base"
        print(
            f"| {r['cycle']} | {r['outcome']} | {live} | "
            f"{r['live_rougeL']:.3f} / {r['base_rougeL']:.3f} / {r['teacher_rougeL']:.3f} | "
            f"{ci(r['vs_base'].get('rougeL'))} | "
            f"{r['live_answer_match']:.3f} / {r['base_answer_match']:.3f} / "
            f"{r['teacher_answer_match']:.3f} | {ci(r['vs_base'].get('answer_match'))} | "
            f"{r['live_perplexity']:.1f} / {r['base_perplexity']:.1f} / "
            f"{r['teacher_perplexity']:.1f} | {r['teacher_rougeL_kept'] or 0:.0%} | {size} |"
        )
    # fmt: skip


def plot_curve(rows: list[dict[str, Any]], path: Path) -> Path:
    """ROUGE-L and answer match per cycle: the live version, the base and the teacher."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cycles = [r["cycle"] for r in rows]
    for ax, metric, title in zip(
        axes, ("rougeL", "answer_match"), ("ROUGE-L", "answer match"), strict=True
    ):
        live = [r[f"live_{metric}"] for r in rows]
        lows = [r["vs_base"].get(metric, {}).get("ci_low") for r in rows]
        highs = [r["vs_base"].get(metric, {}).get("ci_high") for r in rows]
        base = [r[f"base_{metric}"] for r in rows]
        err = [
            [b + lo for b, lo in zip(base, lows, strict=True)],
            [b + hi for b, hi in zip(base, highs, strict=True)],
        ] if None not in lows + highs else None  # fmt: skip
        ax.plot(cycles, live, "o-", color="tab:blue", label="version phones run")
        if err:
            ax.fill_between(cycles, err[0], err[1], color="tab:blue", alpha=0.15,
                            label="base + 95% CI of the difference")  # fmt: skip
        ax.plot(cycles, base, "s--", color="grey", label="untrained base")
        ax.plot(cycles, [r[f"teacher_{metric}"] for r in rows], ":", color="black",
                label="teacher")  # fmt: skip
        ax.set_title(f"{title} on the fixed benchmark ({rows[0]['examples']} tasks)", fontsize=10)
        ax.set_xlabel("cycle")
        ax.set_xticks(cycles)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
