"""`distillery memory`: whether a distillation fits a card, before anything loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import click
import typer

from cli.commands.options import PresetChoice
from cli.errors import UserError
from tasks.models.presets import preset_names


@dataclass(frozen=True)
class Card:
    """A device as the plan sees it: usable memory, weight format, 4-bit possible."""

    label: str
    gib: float
    weight_bytes: float
    nf4: bool


# Usable memory as the runtime reports it (a "16 GB" T4 shows 15 GiB), and each card's format.
CARDS = {
    "t4": Card("T4 16 GB (fp16)", 15.0, 2.0, True),
    "a100-40": Card("A100 40 GB", 39.4, 2.0, True),
    "a100-80": Card("A100 80 GB", 79.2, 2.0, True),
    "h100": Card("H100 80 GB", 79.1, 2.0, True),
    "h200": Card("H200 141 GB", 139.8, 2.0, True),
    "cpu-64": Card("CPU, 64 GiB RAM (fp32)", 64.0, 4.0, False),
}
ANY_PRESET = preset_names()


def memory(
    teacher: Annotated[
        str | None,
        typer.Option(click_type=PresetChoice(ANY_PRESET), metavar="PRESET", help="teacher preset"),
    ] = None,
    student: Annotated[
        str | None,
        typer.Option(click_type=PresetChoice(ANY_PRESET), metavar="PRESET", help="student preset"),
    ] = None,
    card: Annotated[
        str | None,
        typer.Option(
            "--card",
            click_type=click.Choice(list(CARDS)),
            metavar="NAME",
            help=f"plan for this card instead of this machine; choices: {', '.join(CARDS)}",
        ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="per-device training batch [the preset's]")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(min=16, help="tokens per record [the preset's]")
    ] = None,
    checkpointing: Annotated[
        bool, typer.Option("--checkpointing", help="with gradient checkpointing")
    ] = False,
    cards: Annotated[
        bool, typer.Option("--cards", help="the seed pairs on every card, as in the README")
    ] = False,
) -> int:
    """Teacher + student + LoRA + optimizer + activations against a device's memory; when
    the batch does not fit, the batch and accumulation that do (what `distill` would use)."""
    from tasks.distill.config import DistillConfig

    if cards:
        print(cards_table())
        return 0
    if teacher is None or student is None:
        raise UserError("give --teacher and --student (or --cards for the seed pairs)")
    config = DistillConfig(
        per_device_batch_size=batch, max_length=max_length, gradient_checkpointing=checkpointing
    )
    from tasks.distill.memory import device_workload, workload
    from tasks.models.memory_plan import GIB, device_capacity, estimate, fit_batch

    if card is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        work, capacity, where = (
            device_workload(teacher, student, config, device),
            device_capacity(device),
            f"this machine's {device}",
        )
    else:
        chosen = CARDS[card]
        work = workload(
            teacher, student, config, weight_bytes=chosen.weight_bytes, nf4_possible=chosen.nf4
        )
        capacity, where = chosen.gib * GIB, chosen.label
    plan = estimate(work, capacity)
    print(f"{teacher} → {student} on {where}, batch {work.batch} × {work.max_length} tokens:")
    print(plan.table())
    if plan.fits:
        return 0
    fitted = fit_batch(work, capacity)
    if fitted is None:
        raise UserError(
            "it does not fit at batch 1 either: shorter records, 4-bit, or a larger card"
        )
    print(
        f"✓ fits at batch {fitted.batch} × accumulation {fitted.grad_accum} (teacher signals "
        f"{fitted.teacher_batch} at a time): {estimate(fitted, capacity).peak / GIB:.1f} GiB"
    )
    return 0


def cards_table() -> str:
    """Markdown: for each seed pair, the largest batch each card takes, and its peak."""
    from tasks.distill.config import DistillConfig
    from tasks.distill.memory import workload
    from tasks.distill.vocabs import seed_pairs
    from tasks.models.memory_plan import GIB, estimate, fit_batch

    header = "| teacher → student (batch × tokens) | " + " | ".join(c.label for c in CARDS.values())
    lines = [header + " |", "|---" * (len(CARDS) + 1) + "|"]
    for teacher, student in seed_pairs():
        cells = []
        for card in CARDS.values():
            cell = "does not fit"
            for checkpointing in (False, True):
                config = DistillConfig(gradient_checkpointing=checkpointing)
                work = workload(
                    teacher, student, config, weight_bytes=card.weight_bytes, nf4_possible=card.nf4
                )
                fitted = fit_batch(work, card.gib * GIB)
                if fitted is not None:
                    peak = estimate(fitted, card.gib * GIB).peak / GIB
                    note = ", checkpointing" if checkpointing else ""
                    cell = f"batch {fitted.batch}{note}, {peak:.0f} GiB"
                    break
            cells.append(cell)
        first = workload(teacher, student, DistillConfig(), weight_bytes=2.0, nf4_possible=True)
        name = f"{teacher} → {student} ({first.batch} × {first.max_length})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
