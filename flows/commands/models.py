"""`distillery models list|history` and `distillery rollback`: versions, channels, audit trail."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import datetime

from storage.config import StorageSettings
from storage.db import Database, get_database
from storage.registry import RegistryError, channels


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` and `rollback` commands."""
    models = subparsers.add_parser("models", help="published model versions and their channels")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="versions of every (or one) student")
    listing.add_argument("--student", help="only this student")
    listing.set_defaults(func=run_list)
    history = actions.add_parser("history", help="promotions and rollbacks of a student")
    history.add_argument("student")
    history.add_argument("--channel", help="only this channel (default: all)")
    history.set_defaults(func=run_history)

    rollback = subparsers.add_parser(
        "rollback", help="move a student's stable channel back to an earlier version"
    )
    rollback.add_argument("student")
    rollback.add_argument(
        "--to",
        type=int,
        dest="to_version",
        metavar="VERSION",
        help="a published version (default: the previous stable)",
    )
    rollback.add_argument("--reason", default="", help="why, kept in the audit trail")
    rollback.add_argument("--channel", default="stable")
    rollback.add_argument("--actor", default=None, help="who (default: the login name)")
    rollback.set_defaults(func=run_rollback)


def run_list(args: argparse.Namespace) -> int:
    """Print every version with status, channels and size."""
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
        for v in channels.list_versions(_database(), args.student)
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


def run_history(args: argparse.Namespace) -> int:
    """Print the audit trail of one student, oldest first."""
    entries = channels.history(_database(), args.student, channel=args.channel)
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
    print(table(header, rows) if rows else f"no promotions or rollbacks of {args.student}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    """Roll the channel back; a refused rollback prints why and exits with status 2."""
    try:
        moved = channels.rollback(
            _database(),
            args.student,
            to_version=args.to_version,
            channel=args.channel,
            reason=args.reason,
            actor=args.actor or _login(),
        )
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not moved.moved:
        print(f"{moved.student} {moved.channel} already points at v{moved.to_version}")
    else:
        print(f"{moved.student} {moved.channel}: v{moved.from_version} -> v{moved.to_version}")
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
