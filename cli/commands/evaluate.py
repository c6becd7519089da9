"""`distillery evaluate candidate|model|fixed-set|live`: evaluate, gate and report students."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from cli.commands.options import TEACHERS, PresetChoice, Student

if TYPE_CHECKING:
    from tasks.evaluate.config import EvaluateConfig

app = typer.Typer(help="Evaluate student models: gate a candidate, score a model, re-check live.")

Limit = Annotated[
    int | None,
    typer.Option(
        min=1, help="first N examples of each test split; the fixed benchmark is scored whole [all]"
    ),
]
BatchSize = Annotated[int, typer.Option(min=1, help="examples per forward pass")]
MaxNewTokens = Annotated[int, typer.Option(min=1, help="generated tokens per answer")]
Device = Annotated[
    str | None,
    typer.Option(
        click_type=click.Choice(["cpu", "cuda"]),
        metavar="CPU|CUDA",
        help="cpu or cuda [default: cuda when available, else cpu]",
    ),
]


Gate = Annotated[
    str | None,
    typer.Option(
        metavar="FILE|JSON",
        help="GatePolicy fields as a .json/.yaml file or inline JSON, e.g. "
        '\'{"answer_gain": "always"}\' [default: the policy\'s defaults]',
    ),
]


def _config(
    limit: int | None,
    batch_size: int,
    max_new_tokens: int,
    device: str | None,
    fixed_set: Path | None,
    **more: Any,
) -> EvaluateConfig:
    """The evaluation options of a command, validated as one EvaluateConfig."""
    from tasks.config import load_config
    from tasks.evaluate.config import EvaluateConfig

    scoring = {"limit": limit, "batch_size": batch_size, "max_new_tokens": max_new_tokens}
    return load_config(
        EvaluateConfig,
        {
            "scoring": scoring,
            "device": device,
            "fixed_set_path": str(fixed_set) if fixed_set else None,
            **more,
        },
    )


@app.command()
def candidate(
    adapter: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="candidate LoRA adapter folder")
    ],
    snapshot: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="snapshot folder (its test split)")
    ],
    student: Student = "smollm2-pruned-student",
    stable_adapter: Annotated[
        Path | None, typer.Option(exists=True, help="adapter of the version phones run now")
    ] = None,
    earlier: Annotated[
        list[Path] | None, typer.Option(exists=True, help="earlier snapshot (repeatable)")
    ] = None,
    fixed_set: Annotated[
        Path | None, typer.Option(exists=True, help="[default: the built-in fixed benchmark]")
    ] = None,
    resamples: Annotated[int, typer.Option(min=10, help="bootstrap resamples")] = 1000,
    teacher: Annotated[
        str | None,
        typer.Option(
            click_type=PresetChoice(TEACHERS),
            metavar="PRESET",
            help="teacher scored beside the student as the yardstick [none]",
        ),
    ] = None,
    teacher_adapter: Annotated[
        Path | None, typer.Option(exists=True, help="the teacher's fine-tuned LoRA, if any")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="[default: under the data dir]")] = None,
    limit: Limit = None,
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 64,
    device: Device = None,
    gate: Gate = None,
) -> int:
    """Candidate vs stable vs base student: metrics, gate decision and report.

    Exit status 0 when the gate promotes, 3 when it rejects.
    """
    from tasks.config import load_config
    from tasks.evaluate.gate import GatePolicy

    policy = load_config(GatePolicy, gate) if gate else GatePolicy()
    config = _config(
        limit, batch_size, max_new_tokens, device, fixed_set, n_resamples=resamples, gate=policy
    )
    from flows.evaluate import evaluate_candidate_flow

    result = evaluate_candidate_flow(
        student,
        str(adapter),
        str(snapshot),
        stable_adapter_dir=str(stable_adapter) if stable_adapter else None,
        earlier_test_paths=[str(p) for p in earlier or []],
        teacher_preset=teacher,
        teacher_adapter_dir=str(teacher_adapter) if teacher_adapter else None,
        config=config,
        out_dir=str(out) if out else None,
    )
    for reason in result.reasons:
        print(f"  {reason}")
    if result.teacher:
        print(f"  {result.teacher}")
    mark = "✓ promote" if result.promote else "✗ reject"
    print(f"{mark}; report: {result.report_path}")
    return 0 if result.promote else 3


@app.command()
def model(
    preset: Annotated[str, typer.Option(help="model preset (see `distillery cycle --help`)")],
    adapter: Annotated[Path | None, typer.Option(exists=True, help="LoRA adapter folder")] = None,
    set_: Annotated[
        list[Path] | None,
        typer.Option("--set", exists=True, help="eval set folder (repeatable) [fixed benchmark]"),
    ] = None,
    out: Annotated[Path, typer.Option(help="results JSON path")] = Path("eval-results.json"),
    limit: Limit = None,
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 64,
    device: Device = None,
) -> int:
    """Metrics of one model on evaluation sets (no gate); prints them per set."""
    from tasks.evaluate.run import evaluate_model, load_results
    from tasks.evaluate.sets import FIXED_SET_NAME, cache_fixed_benchmark
    from tasks.models.presets import get_preset

    get_preset(preset)  # an unknown name fails here, before any model loads
    paths = [str(p) for p in set_] if set_ else [str(cache_fixed_benchmark())]
    sets = {FIXED_SET_NAME if not set_ else Path(p).name: p for p in paths}
    config = _config(limit, batch_size, max_new_tokens, device, None)
    adapter_dir = str(adapter) if adapter else None
    results = load_results(
        evaluate_model(preset, adapter_dir, sets, str(out), config.scoring, config.device)
    )
    for name, s in results["sets"].items():
        shown = ("perplexity", "bleu", "rougeL", "exact_match", "mean_entropy")
        values = ", ".join(f"{k} {s['metrics'][k]:.4g}" for k in shown if k in s["metrics"])
        print(f"  {name}: {values}")
    print(f"✓ {preset} evaluated in {results['wall_s']:.0f} s; all metrics in {out}")
    return 0


@app.command("fixed-set")
def fixed_set(
    source: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="a JSONL of tasks [built-in]")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="[default: <data dir>/eval/fixed-<hash>]")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N tasks only [all]")] = None,
    overwrite: Annotated[bool, typer.Option(help="rewrite an existing copy")] = False,
) -> int:
    """Save the fixed benchmark set (the built-in held-out tasks) and print where it is."""
    from tasks.evaluate.sets import cache_fixed_benchmark, load_eval_set

    path = cache_fixed_benchmark(out, source=source, limit=limit, overwrite=overwrite)
    print(f"{path}: {len(load_eval_set(path))} examples")
    return 0


@app.command()
def live(
    fixed_set: Annotated[
        Path | None, typer.Option(exists=True, help="[default: the built-in fixed benchmark]")
    ] = None,
    limit: Limit = None,
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 64,
    device: Device = None,
) -> int:
    """Re-evaluate every published version on every set (the monthly deployment)."""
    from flows.evaluate import reevaluate_live_versions_flow

    result = reevaluate_live_versions_flow(
        _config(limit, batch_size, max_new_tokens, device, fixed_set)
    )
    for row in result.rows:
        print(json.dumps(row))
    return 0
