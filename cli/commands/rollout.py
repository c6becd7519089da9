"""`distillery rollout start|status|widen|promote|abort`: a version on a share of devices."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.commands.models import _database, _login, table
from cli.errors import UserError
from storage.registry import RegistryError
from storage.registry import rollouts as registry_rollouts
from storage.registry.rollouts import RolloutInfo
from storage.repo.rollout_policy import judge

app = typer.Typer(help="Staged rollouts: a version on a share of a student's devices.")

Student = Annotated[str, typer.Argument(help="student preset name")]
Reason = Annotated[str, typer.Option(help="why, kept in the audit trail")]
Actor = Annotated[str | None, typer.Option(help="who [the login name]")]


def _done(info: RolloutInfo, what: str) -> int:
    print(f"✓ {info.student} v{info.version}: {what} (rollout {info.id}, stable "
          f"v{info.stable_version})")  # fmt: skip
    return 0


@app.command()
def start(
    student: Student,
    version: Annotated[int, typer.Option(metavar="V", help="the published version to roll out")],
    percent: Annotated[
        int, typer.Option(min=1, max=100, metavar="P", help="share of devices, 1..100")
    ] = 10,
    reason: Reason = "",
    actor: Actor = None,
) -> int:
    """Serve version V to P % of the student's devices; the others stay on stable."""
    try:
        info = registry_rollouts.start(
            _database(), student, version, percent, reason=reason, actor=actor or _login()
        )
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    return _done(info, f"on {info.percent} % of devices")


@app.command()
def widen(
    student: Student,
    percent: Annotated[int, typer.Option(min=1, max=100, metavar="P", help="new share, 1..100")],
    reason: Reason = "",
    actor: Actor = None,
) -> int:
    """Serve the running rollout to more devices (those already in stay in)."""
    try:
        info = registry_rollouts.widen(
            _database(), student, percent, reason=reason, actor=actor or _login()
        )
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    return _done(info, f"on {info.percent} % of devices")


@app.command()
def promote(student: Student, reason: Reason = "", actor: Actor = None) -> int:
    """Make the rollout's version stable on every device and end the rollout."""
    try:
        info = registry_rollouts.promote(
            _database(), student, reason=reason, actor=actor or _login()
        )
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    return _done(info, "promoted to stable")


@app.command()
def abort(student: Student, reason: Reason = "", actor: Actor = None) -> int:
    """Put every device back on stable and end the rollout."""
    try:
        info = registry_rollouts.abort(_database(), student, reason=reason, actor=actor or _login())
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    return _done(info, "aborted: every device is on stable")


@app.command()
def status(
    student: Annotated[str | None, typer.Argument(help="only this student [all]")] = None,
    days: Annotated[int, typer.Option(min=1, help="days of live quality to read")] = 14,
) -> int:
    """Rollouts (newest first) and, for a running one, its live quality against stable and
    what the watcher's policy would do now."""
    database = _database()
    infos = registry_rollouts.rollouts(database, student)
    if not infos:
        print("no rollouts" + (f" of {student}" if student else ""))
        return 0
    rows = [
        [i.student, str(i.id), f"v{i.version}", f"v{i.stable_version}", f"{i.percent} %",
         i.status, i.started_at.strftime("%Y-%m-%d %H:%M")]
        for i in infos
    ]  # fmt: skip
    print(table(["student", "rollout", "canary", "stable", "share", "status", "started"], rows))
    for info in infos:
        if info.status != "active" or info.stable_version is None:
            continue
        print(judge(database, info, days)[1])
    return 0


@app.command()
def watch(
    days: Annotated[int, typer.Option(min=1, help="days of live quality to read")] = 14,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="decide, but change nothing")] = False,
) -> int:
    """One pass of the rollout policy over every running rollout, now: roll back, promote or
    widen (the hourly-rollout-watch deployment runs the same pass on a schedule)."""
    from flows.rollout_watch import rollout_watch

    if not rollout_watch(days=days, dry_run=dry_run):
        print("no rollout running")
    return 0
