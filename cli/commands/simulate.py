"""`distillery simulate`: phones upload seeded, rated and corrected feedback over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate(
    url: Annotated[str, typer.Option(help="the service's base URL")] = "http://127.0.0.1:8000",
    phones: Annotated[int, typer.Option(min=1, help="simulated phones")] = 4,
    interactions: Annotated[int, typer.Option(min=0, help="in total, over all phones")] = 100,
    seed: Annotated[int, typer.Option(help="the same seed sends the same uploads")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="interactions per upload")] = 25,
    records: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="a JSONL of tasks to draw from [default: the built-in sample tasks]",
        ),
    ] = None,
) -> int:
    """Play phones against a running service: register, then upload rated, corrected feedback."""
    import httpx

    from cli.errors import UserError
    from simulator.phones import SimulationConfig, run_simulation

    config = SimulationConfig(
        phones=phones,
        interactions=interactions,
        seed=seed,
        batch_size=batch_size,
        records=records,
    )
    try:
        report = run_simulation(url, config, progress=True)
    except httpx.ConnectError as exc:
        raise UserError(f"no service answers at {url} ({exc}): start `distillery serve`") from exc
    print(
        f"✓ {len(report.devices)} phones sent {report.sent} interactions in {report.batches} "
        f"uploads: {report.accepted} accepted, {report.duplicates} duplicates "
        f"({report.resent} re-sent on purpose)"
    )
    outcomes = ", ".join(f"{n} {kind}" for kind, n in sorted(report.outcomes.items()))
    print(f"  simulated outcomes: {outcomes}")
    return 0
