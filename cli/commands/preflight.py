"""`distillery preflight`: which distillation a teacher/student pair gets, and why."""

from __future__ import annotations

import json
from typing import Annotated

import click
import typer

from cli.commands.options import PresetChoice
from cli.errors import UserError
from tasks.models.presets import preset_names

STRATEGIES = ("auto", "logit", "xtok", "sequence")
ANY_PRESET = preset_names()


def preflight(
    teacher: Annotated[
        str | None,
        typer.Option(
            click_type=PresetChoice(ANY_PRESET),
            metavar="PRESET",
            help=f"teacher preset; choices: {', '.join(ANY_PRESET)}",
        ),
    ] = None,
    student: Annotated[
        str | None,
        typer.Option(click_type=PresetChoice(ANY_PRESET), metavar="PRESET", help="student preset"),
    ] = None,
    seed_pairs: Annotated[
        bool, typer.Option(help="all 9 seed teacher/student pairs instead of one")
    ] = False,
    strategy: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(STRATEGIES),
            metavar="MODE",
            help="the strategy to check (auto, logit, xtok or sequence); one the pair "
            "cannot take exits with status 2",
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> int:
    """Compare a pair's tokenizers: the share of shared tokens and the strategy it gets.

    Uses the preset's own tokenizer, else llama.cpp's real vocabulary of the model: logit
    (identical tokenizers), xtok (cross-tokenizer logit KD) or sequence (teacher answers).
    """
    from tasks.distill.preflight import StrategyError
    from tasks.distill.vocabs import pair_report, report_table
    from tasks.distill.vocabs import seed_pairs as all_seed_pairs

    if seed_pairs == bool(teacher or student) or (not seed_pairs and not (teacher and student)):
        raise UserError("give --teacher T --student S, or --seed-pairs")
    pairs = all_seed_pairs() if seed_pairs else [(str(teacher), str(student))]
    try:
        reports = [pair_report(t, s, strategy) for t, s in pairs]
    except StrategyError as exc:
        raise UserError(str(exc)) from exc
    if as_json:
        for report in reports:
            print(json.dumps(report.to_dict()))
        return 0
    print(report_table(reports))
    for report in reports:
        print(f"\n{report.teacher} → {report.student} ({report.teacher_source} / "
              f"{report.student_source}): {report.reason}")  # fmt: skip
    return 0
