"""`distillery quality`: what users did with each version's answers, with intervals."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.errors import UserError
from storage.config import StorageSettings
from storage.db import get_database
from storage.repo.live_quality import LiveQuality, VersionQuality


def _row(q: VersionQuality) -> str:
    days = f"{len(q.days)} day{'' if len(q.days) == 1 else 's'}"
    cells = [f"{q.model_name} v{q.model_version}", f"{q.interactions} interactions over {days}"]
    for name, estimate in q.metrics().items():
        cells.append(f"{name} {estimate.text() if estimate else '-'}")
    return "  ".join(cells)


def quality(
    student: Annotated[
        str | None, typer.Argument(metavar="[MODEL]", help="only this model name [all]")
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, metavar="<days>", help="read this many days back")
    ] = 14,
    candidate: Annotated[
        str | None,
        typer.Option(metavar="VERSION", help="compare this version of MODEL with --reference"),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(metavar="VERSION", help="the version it is compared with")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per version")] = False,
) -> int:
    """Live quality per version: mean rating, thumbs-down share, corrections, answer length,
    chat token entropy, each with a 95 % interval; --candidate/--reference compares two
    versions over the days both answered on."""
    if (candidate is None) != (reference is None) or (candidate and not student):
        raise UserError("--candidate and --reference go together, with MODEL named")
    with get_database(StorageSettings.read()).transaction() as session:
        live = LiveQuality.read(session, days=days, model_name=student)
    if candidate and reference and student:
        a, b, diffs = live.compare(student, candidate, reference)
        shared = f"{len(a.days)} shared day{'' if len(a.days) == 1 else 's'}"
        if not a.days:
            raise UserError(
                f"{student} v{candidate} and v{reference} answered on no common day in the "
                f"last {days} days: nothing to compare"
            )
        print(f"{student} v{candidate} vs v{reference} over {shared}:")
        print(f"  {_row(a)}\n  {_row(b)}")
        for d in diffs:
            verdict = "clearly worse" if d.clearly_worse else "not clearly worse"
            print(f"  {d.metric}: {d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}] {verdict}")
        return 0
    versions = live.versions()
    if not versions:
        print(f"no interactions in the last {days} days" + (f" for {student}" if student else ""))
        return 0
    for q in versions:
        if as_json:
            metrics = {k: (e.__dict__ if e else None) for k, e in q.metrics().items()}
            head = {"model": q.model_name, "version": q.model_version}
            print(json.dumps({**head, "interactions": q.interactions, "days": len(q.days)}
                             | metrics))  # fmt: skip
        else:
            print(_row(q))
    return 0
