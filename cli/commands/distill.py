"""`distillery distill --snapshot PATH --teacher T --student S`: one distillation run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from cli.commands.options import MaxSteps, Student, Teacher


def distill(
    snapshot: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="dataset snapshot folder")
    ],
    teacher: Teacher = "smollm2-135m-instruct",
    student: Student = "smollm2-pruned-student",
    output_dir: Annotated[
        Path | None, typer.Option(help="[default: <artifact root>/runs/distill/...]")
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(["auto", "logit", "xtok", "sequence"]),
            metavar="MODE",
            help="auto, logit, xtok or sequence; auto: logit KD when the tokenizers match, "
            "cross-tokenizer logit KD (xtok) when they differ",
        ),
    ] = "auto",
    max_steps: MaxSteps = None,
    warm_start: Annotated[
        Path | None, typer.Option(exists=True, help="previous adapter folder to continue from")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="a .json or .yaml file of DistillConfig fields"
        ),
    ] = None,
    snapshot_id: Annotated[int | None, typer.Option(help="the snapshot's row id (lineage)")] = None,
    no_flow: Annotated[bool, typer.Option(help="run in-process without Prefect")] = False,
) -> int:
    """Distill a teacher into a student's LoRA adapter on one snapshot."""
    from tasks.config import load_config
    from tasks.distill.config import DistillConfig

    values = load_config(DistillConfig, str(config)).to_dict() if config else {}
    values["strategy"] = strategy if strategy != "auto" else values.get("strategy", "auto")
    if max_steps is not None:
        values["max_steps"] = max_steps
    if warm_start is not None:
        values["warm_start_adapter"] = str(warm_start)
    settings = DistillConfig.from_dict(values)
    out = str(output_dir) if output_dir else None
    if no_flow:
        from tasks.distill.steps import distill_snapshot

        result = distill_snapshot(str(snapshot), teacher, student, settings, out, snapshot_id)
    else:
        from flows.distill import distill_flow

        result = distill_flow(str(snapshot), teacher, student, settings, out, snapshot_id)
    metrics = result.metrics
    print(f"✓ {student} adapter at {result.adapter_dir} ({result.strategy} KD)")
    print("  " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return 0
