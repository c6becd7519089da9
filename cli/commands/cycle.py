"""`distillery cycle` and `distillery teacher-finetune`: run one loop step now, in-process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.commands.options import MaxSteps, Quantizations, Students, Teacher

if TYPE_CHECKING:
    from prefect.states import State

    from tasks.cycle_summary import CycleSummary


def _prefect_env() -> None:
    # Prefect reads settings on import; its in-process server may need long on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")


def print_outcome(state: State[Any], summary: CycleSummary | None) -> int:
    """The cycle's rows, then ✓ or ✗ with the reason; the exit status (0: completed)."""
    for row in summary.students if summary else []:
        version = f" v{row.version}" if row.version else ""
        print(f"  {row.student}: {row.status}{version} — {row.detail or ''}")
    if state.is_completed():
        print(f"✓ cycle completed: {state.message}")
        return 0
    print(f"✗ cycle {state.name}: {state.message}")
    return 1


def cycle(
    teacher: Teacher = "smollm2-135m-instruct",
    student: Students = None,
    min_new_records: Annotated[
        int, typer.Option(min=0, help="skip a student with fewer new interactions")
    ] = 8,
    max_steps: MaxSteps = None,
    teacher_adapter: Annotated[
        bool, typer.Option(help="distill from the fine-tuned teacher LoRA when one exists")
    ] = True,
    quant: Quantizations = None,
    config: Annotated[
        str | None,
        typer.Option(
            metavar="FILE|JSON",
            help="a CycleConfig as a .json/.yaml file or inline JSON (replaces the options "
            "above); unknown keys are refused before any work",
        ),
    ] = None,
) -> int:
    """Run one perpetual cycle now: prepare, distill, evaluate, gate, export, publish."""
    _prefect_env()
    from tasks.config import CycleConfig, load_config

    if config:
        cycle_config = load_config(CycleConfig, config)
    else:
        cycle_config = load_config(
            CycleConfig,
            {
                "teacher": teacher,
                "students": student or ["smollm2-pruned-student"],
                "min_new_records": min_new_records,
                "use_teacher_adapter": teacher_adapter,
                "distill": {"max_steps": max_steps} if max_steps else {},
                "export": {"quantizations": quant or ["PHONE"]},
            },
        )
    from flows.perpetual import perpetual_cycle
    from tasks.cycle_summary import summary_of

    state = perpetual_cycle(cycle_config, return_state=True)
    return print_outcome(state, summary_of(state))


def teacher_finetune(
    teacher: Teacher = "smollm2-135m-instruct",
    min_new_records: Annotated[
        int, typer.Option(min=0, help="skip when fewer new interactions arrived")
    ] = 8,
    max_steps: MaxSteps = None,
) -> int:
    """Fine-tune the teacher's LoRA on the feedback now (what the bi-weekly deployment runs)."""
    _prefect_env()
    from flows.teacher import teacher_finetune as run_teacher_finetune
    from tasks.config import TeacherConfig, load_config

    config = load_config(
        TeacherConfig,
        {
            "teacher": teacher,
            "min_new_records": min_new_records,
            "distill": {"max_steps": max_steps} if max_steps else {},
        },
    )
    state = run_teacher_finetune(config, return_state=True)
    if state.is_completed():
        outcome = state.result()
        # trained: the pointer now in use; rejected or skipped: the gate's reasons, or why.
        done = f"{outcome.status}: {outcome.pointer if outcome.pointer else outcome.detail}"
        print(f"✓ teacher fine-tuning {state.name}, {done}")
        return 0
    print(f"✗ teacher fine-tuning {state.name}: {state.message}")
    return 1
