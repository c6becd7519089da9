"""`distillery simulate`: phones upload seeded, rated and corrected feedback over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate(
    url: Annotated[str, typer.Option(help="the service's base URL")] = "http://127.0.0.1:8000",
    phones: Annotated[
        int | None, typer.Option(min=1, help="simulated phones [4; with --rollout 40]")
    ] = None,
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
    rollout: Annotated[
        bool,
        typer.Option(
            "--rollout",
            help="a rollout round instead: each phone runs the version the manifest serves its "
            "device id (stable or the canary) and rates it",
        ),
    ] = False,
    student: Annotated[
        str | None,
        typer.Option(help="with --rollout: the student [the manifest's only one]"),
    ] = None,
    per_phone: Annotated[
        int, typer.Option(min=1, help="with --rollout: interactions each phone uploads")
    ] = 25,
    happiness_drop: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.35,
            help="with --rollout: share of the canary's answers rated 1-2 instead of 4-5",
        ),
    ] = 0.15,
    min_cohort_phones: Annotated[
        int,
        typer.Option(min=0, help="with --rollout: more phones join until this many get the canary"),
    ] = 4,
) -> int:
    """Play phones against a running service: register, then upload rated, corrected feedback.

    With --rollout, phones poll the manifest with their device id and upload feedback on the
    version they were served; a running rollout's cohort gets the canary, whose users are a
    little less happy (--happiness-drop). Then `distillery rollout status` shows the live
    quality of both and what the watcher would do. All phones register from this address:
    past the service's DISTILLERY_REGISTRATION_RATE_LIMIT (20 a minute) they wait out its
    Retry-After.
    """
    import httpx

    from cli.errors import UserError

    try:
        if rollout:
            return _rollout(url, phones or 40, per_phone, happiness_drop, min_cohort_phones,
                            student, seed, records)  # fmt: skip
        return _feedback(url, phones or 4, interactions, seed, batch_size, records)
    except httpx.ConnectError as exc:
        raise UserError(f"no service answers at {url} ({exc}): start `distillery serve`") from exc


def _feedback(
    url: str, phones: int, interactions: int, seed: int, batch_size: int, records: Path | None
) -> int:
    from simulator.phones import SimulationConfig, run_simulation

    config = SimulationConfig(
        phones=phones,
        interactions=interactions,
        seed=seed,
        batch_size=batch_size,
        records=records,
    )
    report = run_simulation(url, config, progress=True)
    print(
        f"✓ {len(report.devices)} phones sent {report.sent} interactions in {report.batches} "
        f"uploads: {report.accepted} accepted, {report.duplicates} duplicates "
        f"({report.resent} re-sent on purpose)"
    )
    outcomes = ", ".join(f"{n} {kind}" for kind, n in sorted(report.outcomes.items()))
    print(f"  simulated outcomes: {outcomes}")
    return 0


def _rollout(
    url: str,
    phones: int,
    per_phone: int,
    drop: float,
    min_cohort: int,
    student: str | None,
    seed: int,
    records: Path | None,
) -> int:
    import httpx

    from cli.errors import UserError
    from simulator.rollout import LATEST, RolloutRoundConfig, run_rollout_round

    if student is None:
        listed = httpx.get(f"{url}{LATEST}", timeout=30).raise_for_status().json()["models"]
        names = sorted({m["student"] for m in listed})
        if len(names) != 1:
            raise UserError(f"the manifest lists {names or 'no student'}: name one with --student")
        student = names[0]
    config = RolloutRoundConfig(
        student=student,
        phones=phones,
        per_phone=per_phone,
        happiness_drop=drop,
        min_cohort_phones=min_cohort,
        max_phones=max(phones, 4 * phones),
        seed=seed,
        records=records,
    )
    try:
        report = run_rollout_round(url, config)
    except RuntimeError as exc:
        raise UserError(str(exc)) from exc
    print(f"✓ {len(report.served)} phones ran {student}:")
    for cohort in sorted(report.cohorts.values(), key=lambda c: c.channel != "stable"):
        print(f"  {cohort.line(student)}")
    if report.canary is None:
        print(f"  no phone was served a canary: is a rollout of {student} running?")
    print(f"  next: distillery rollout status {student}")
    return 0
