"""`distillery models list|history` and `distillery rollback`: versions, channels, audit trail."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer

from flows.errors import UserError
from storage.config import StorageSettings
from storage.db import Database, get_database
from storage.registry import RegistryError, channels

app = typer.Typer(help="Published model versions, their channels and audit trail.")


@app.command("list")
def list_versions(
    student: Annotated[str | None, typer.Option(help="only this student [all]")] = None,
) -> int:
    """Every version with status, channels and size."""
    rows = [
        [
            v.student,
            str(v.version),
            v.status,
            ",".join(v.channels) or "-",
            str(v.files),
            _size(v.size),
            v.base_model,
            _when(v.published_at),
        ]
        for v in channels.list_versions(_database(), student)
    ]
    header = [
        "STUDENT",
        "VERSION",
        "STATUS",
        "CHANNELS",
        "FILES",
        "SIZE",
        "BASE MODEL",
        "PUBLISHED",
    ]
    print(table(header, rows) if rows else "no model versions yet")
    return 0


@app.command()
def history(
    student: Annotated[str, typer.Argument(help="student preset name")],
    channel: Annotated[str | None, typer.Option(help="only this channel [all]")] = None,
) -> int:
    """Promotions and rollbacks of one student, oldest first."""
    entries = channels.history(_database(), student, channel=channel)
    rows = [
        [
            _when(e.at),
            e.channel,
            e.action,
            "-" if e.from_version is None else f"v{e.from_version}",
            f"v{e.to_version}",
            e.actor,
            e.reason,
        ]
        for e in entries
    ]
    header = ["WHEN (UTC)", "CHANNEL", "ACTION", "FROM", "TO", "ACTOR", "REASON"]
    print(table(header, rows) if rows else f"no promotions or rollbacks of {student}")
    return 0


def rollback(
    student: Annotated[str, typer.Argument(help="student preset name")],
    to: Annotated[
        int | None,
        typer.Option(metavar="VERSION", help="a published version [the previous stable]"),
    ] = None,
    reason: Annotated[str, typer.Option(help="why, kept in the audit trail")] = "",
    channel: Annotated[str, typer.Option(help="the channel to move")] = "stable",
    actor: Annotated[str | None, typer.Option(help="who [the login name]")] = None,
) -> int:
    """Move a student's channel back to an earlier published version (phones follow)."""
    try:
        moved = channels.rollback(
            _database(),
            student,
            to_version=to,
            channel=channel,
            reason=reason,
            actor=actor or _login(),
        )
    except RegistryError as exc:
        raise UserError(str(exc)) from exc
    if not moved.moved:
        print(f"{moved.student} {moved.channel} already points at v{moved.to_version}")
    else:
        print(f"✓ {moved.student} {moved.channel}: v{moved.from_version} -> v{moved.to_version}")
    return 0


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _database() -> Database:
    return get_database(StorageSettings())


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
