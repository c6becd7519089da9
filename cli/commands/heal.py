"""`distillery heal STUDENT`: build a pruned student's healed base once (tasks/distill/heal.py)."""

from __future__ import annotations

import json
from typing import Annotated

import click
import typer

from cli.errors import UserError
from tasks.models.presets import PRESETS

HEALED = sorted(n for n, p in PRESETS.items() if p.source == "healed")


def heal(
    student: Annotated[
        str,
        typer.Argument(
            click_type=click.Choice(HEALED),
            metavar="PRESET",
            help=f"a healed student preset; choices: {', '.join(HEALED)}",
            show_default=False,
        ),
    ],
    force: Annotated[bool, typer.Option(help="heal again even when the base exists")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> int:
    """Heal a layer-pruned student once: logit KD from its teacher on the built-in training
    prompts, merged into the weights and kept under <data dir>/models.

    The perpetual cycle heals a healed student before its first training by itself; this
    command does it ahead of time (about 11 minutes on 2 quiet CPU cores for the SmolLM2
    student).
    """
    from tasks.distill.heal import heal as run_heal
    from tasks.models.presets import get_preset

    recipe = get_preset(student).heal
    if recipe is None:  # the choice list holds healed presets only; kept for the types
        raise UserError(f"{student} is not a healed preset")
    if not as_json:
        print(
            f"healing {recipe.student} from {recipe.teacher}: {recipe.steps} steps of logit KD, "
            f"LoRA r={recipe.lora_r} merged afterwards"
        )
    result = run_heal(student, force=force)
    if as_json:
        print(json.dumps(result.model_dump(mode="json")))
    elif result.built:
        loss = f", final training loss {result.train_loss:.3f}" if result.train_loss else ""
        print(f"✓ healed {student} in {result.seconds:.0f}s{loss}: {result.model_dir}")
    else:
        print(f"✓ {student} is already healed: {result.model_dir} (--force heals again)")
    return 0
