"""`distillery devices list|approve|revoke`: who may teach the model (enrollment admin)."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from storage.config import StorageSettings
from storage.db import get_database
from storage.repo.devices import STATUSES, list_devices, set_status

app = typer.Typer(help="Phones that may upload feedback: list, approve or revoke them.")

DeviceIds = Annotated[list[str], typer.Argument(metavar="DEVICE_ID...", help="device ids")]


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option(
            click_type=click.Choice(STATUSES),
            metavar="STATE",
            help=f"only this status; choices: {', '.join(STATUSES)} [all]",
        ),
    ] = None,
) -> int:
    """Devices with status, platform, app version and interaction count, one a line."""
    db = get_database(StorageSettings())
    with db.transaction() as session:
        rows = list_devices(session=session, status=status)
    print(f"{'device':32}  {'status':8}  {'platform':10}  {'app':8}  {'rows':>7}  last seen")
    for d in rows:
        seen = d.last_seen_at.strftime("%Y-%m-%d %H:%M") if d.last_seen_at else "-"
        print(
            f"{d.id:32}  {d.status:8}  {d.platform[:10]:10}  {d.app_version[:8]:8}"
            f"  {d.interactions:>7}  {seen}"
        )
    return 0


def _set(device_ids: list[str], status: str) -> int:
    """Set the status of the named devices; exit 1 naming any unknown id."""
    db = get_database(StorageSettings())
    with db.transaction(write=True) as session:
        found = set_status(session=session, device_ids=device_ids, status=status)
    for device_id in device_ids:
        if device_id in found:
            print(f"✓ {device_id}: {status}")
    missing = [d for d in device_ids if d not in found]
    if missing:
        print(f"✗ unknown device id(s): {', '.join(missing)} (see `distillery devices list`)")
        return 1
    return 0


@app.command()
def approve(device_ids: DeviceIds) -> int:
    """Let pending (or revoked) devices upload feedback."""
    return _set(device_ids, "active")


@app.command()
def revoke(device_ids: DeviceIds) -> int:
    """Refuse these devices' tokens from now on (401 at once, on every worker)."""
    return _set(device_ids, "revoked")
