"""`distillery cycle` and `distillery teacher-finetune`: run one loop step now, in-process."""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `cycle` and `teacher-finetune` commands."""
    cycle = subparsers.add_parser(
        "cycle", help="run one perpetual cycle now (what the weekly deployment runs)"
    )
    cycle.add_argument("--teacher", default="smollm2-135m-instruct")
    cycle.add_argument(
        "--student", action="append", dest="students", help="student preset (repeatable)"
    )
    cycle.add_argument("--min-new-records", type=int, default=8)
    cycle.add_argument("--max-steps", type=int, default=None, help="cap on training steps")
    cycle.add_argument("--no-teacher-adapter", action="store_true", help="use the base teacher")
    cycle.add_argument("--config", help="a JSON CycleConfig (overrides the options above)")
    cycle.set_defaults(func=run_cycle)

    teacher = subparsers.add_parser(
        "teacher-finetune", help="fine-tune the teacher's LoRA now (the bi-weekly deployment)"
    )
    teacher.add_argument("--teacher", default="smollm2-135m-instruct")
    teacher.add_argument("--min-new-records", type=int, default=8)
    teacher.add_argument("--max-steps", type=int, default=None)
    teacher.set_defaults(func=run_teacher)


def _prefect_env() -> None:
    # Prefect reads settings on import; its in-process server may need long on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")


def run_cycle(args: argparse.Namespace) -> int:
    """Run the cycle; exit status 0 when no student failed."""
    _prefect_env()
    from flows.perpetual import perpetual_cycle
    from tasks.cycle import CycleConfig

    if args.config:
        config = CycleConfig.model_validate_json(args.config)
    else:
        config = CycleConfig(
            teacher=args.teacher,
            students=args.students or ["smollm2-pruned-student"],
            min_new_records=args.min_new_records,
            use_teacher_adapter=not args.no_teacher_adapter,
            distill={"max_steps": args.max_steps} if args.max_steps else {},
        )
    state = perpetual_cycle(config, return_state=True)
    print(json.dumps(state.result(raise_on_failure=False), indent=2, default=str))
    return 0 if state.is_completed() else 1


def run_teacher(args: argparse.Namespace) -> int:
    """Fine-tune the teacher; exit status 0 when the run completed."""
    _prefect_env()
    from flows.teacher import TeacherConfig, teacher_finetune

    config = TeacherConfig(
        teacher=args.teacher,
        min_new_records=args.min_new_records,
        distill={"max_steps": args.max_steps} if args.max_steps else {},
    )
    state = teacher_finetune(config, return_state=True)
    print(json.dumps(state.result(raise_on_failure=False), indent=2, default=str))
    return 0 if state.is_completed() else 1
