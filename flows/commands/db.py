"""`distillery db upgrade|current`: apply or show schema migrations."""

from __future__ import annotations

import argparse

from storage.config import StorageSettings
from storage.db import Database


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `db` command."""
    parser = subparsers.add_parser("db", help="database schema migrations")
    parser.add_argument("action", choices=["upgrade", "current"])
    parser.add_argument("--revision", default="head")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Upgrade the configured database or print its revision."""
    db = Database(StorageSettings().resolved_database_url())
    if args.action == "upgrade":
        db.upgrade(args.revision)
    print(f"{db.url.render_as_string(hide_password=True)}: revision {db.current_revision()}")
    return 0
