"""`distillery devices list|approve|revoke`: who may teach the model (enrollment admin)."""

from __future__ import annotations

import argparse
import sys

from storage.config import StorageSettings
from storage.db import get_database
from storage.repo.devices import STATUSES, list_devices, set_status


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `devices` command."""
    parser = subparsers.add_parser(
        "devices",
        help="list, approve or revoke phone devices",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="devices with status and interaction count",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    listing.add_argument("--status", choices=STATUSES, default=None, help="only this status")
    listing.set_defaults(func=run_list)
    for action, status, what in (
        ("approve", "active", "let pending (or revoked) devices upload"),
        ("revoke", "revoked", "refuse these devices' tokens from now on (401)"),
    ):
        sub = actions.add_parser(
            action, help=what, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        sub.add_argument("device_ids", nargs="+", metavar="DEVICE_ID")
        sub.set_defaults(func=run_set, status=status)


def run_list(args: argparse.Namespace) -> int:
    """Print one device a line."""
    db = get_database(StorageSettings())
    with db.transaction() as session:
        rows = list_devices(session=session, status=args.status)
    print(f"{'device':32}  {'status':8}  {'platform':10}  {'app':8}  {'rows':>7}  last seen")
    for d in rows:
        seen = d.last_seen_at.strftime("%Y-%m-%d %H:%M") if d.last_seen_at else "-"
        print(
            f"{d.id:32}  {d.status:8}  {d.platform[:10]:10}  {d.app_version[:8]:8}"
            f"  {d.interactions:>7}  {seen}"
        )
    return 0


def run_set(args: argparse.Namespace) -> int:
    """Set the status of the named devices; exit 1 naming any unknown id."""
    db = get_database(StorageSettings())
    with db.transaction(write=True) as session:
        found = set_status(session=session, device_ids=args.device_ids, status=args.status)
    for device_id in args.device_ids:
        if device_id in found:
            print(f"{device_id}: {args.status}")
    missing = [d for d in args.device_ids if d not in found]
    if missing:
        print(
            f"unknown device id(s): {', '.join(missing)} (see `distillery devices list`)",
            file=sys.stderr,
        )
        return 1
    return 0
