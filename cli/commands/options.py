"""Option types shared by the commands: preset and quantization choices, shown in --help."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from tasks.config import QUANTIZATIONS
from tasks.models.presets import DEPTH_MARK, UnknownPresetError, get_preset, preset_names
from tasks.models.remote import remote_teacher_names


def _teacher_names() -> list[str]:
    """Presets, then remote teachers (tasks/models/remote.py) read from their file now."""
    try:
        return preset_names("teacher") + remote_teacher_names()
    except (ValidationError, SettingsError):  # a bad DISTILLERY_ value: the command names it
        return preset_names("teacher")


TEACHERS = _teacher_names()
STUDENTS = preset_names("student")


def _choices(names: list[str] | tuple[str, ...]) -> str:
    return "choices: " + ", ".join(names)


class PresetChoice(click.Choice):
    """One of the listed presets, or a listed shape preset at fewer layers (`shape-…-L2`)."""

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        if isinstance(value, str) and value.rpartition(DEPTH_MARK)[0] in self.choices:
            try:
                return get_preset(value).name
            except UnknownPresetError as exc:
                self.fail(str(exc).strip('"'), param, ctx)
        return super().convert(value, param, ctx)


# Choice lists are spelled out in the help text: the metavar stays one short word.
Teacher = Annotated[
    str,
    typer.Option(
        click_type=PresetChoice(TEACHERS),
        metavar="PRESET",
        help=f"teacher model preset; {_choices(TEACHERS)}",
    ),
]
Student = Annotated[
    str,
    typer.Option(
        click_type=PresetChoice(STUDENTS),
        metavar="PRESET",
        help=f"student model preset; {_choices(STUDENTS)}",
    ),
]
Students = Annotated[
    list[str] | None,
    typer.Option(
        "--student",
        click_type=PresetChoice(STUDENTS),
        metavar="PRESET",
        help=f"student model preset, repeat for several; {_choices(STUDENTS)} "
        "[default: smollm2-pruned-student]",
    ),
]
Quantizations = Annotated[
    list[str] | None,
    typer.Option(
        "--quant",
        click_type=click.Choice(QUANTIZATIONS),
        metavar="QUANT",
        help=f"GGUF file for phones, repeat for several; {_choices(QUANTIZATIONS)}; PHONE = "
        "the first of Q4_K_M, Q4_1, Q8_0 that passes parity [default: PHONE]",
    ),
]
MaxSteps = Annotated[
    int | None, typer.Option(min=1, help="cap on training steps [default: full epochs]")
]
