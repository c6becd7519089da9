"""`distillery devices list|approve|revoke|grant|revoke-role`: who may teach the model, and
who may review others' answers (enrollment admin)."""

from __future__ import annotations

from typing import Annotated

import click
import typer
from sqlalchemy import select

from cli.commands.models import _login
from storage.config import StorageSettings
from storage.db import get_database
from storage.models import Device
from storage.repo.devices import ROLES, STATUSES, list_devices, set_role, set_status
from storage.repo.erasure import record_event

app = typer.Typer(
    help="Devices that may upload feedback: list, approve or revoke them; grant review."
)

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
    role: Annotated[
        str | None,
        typer.Option(
            "--role",  # named: with metavar ROLE, Typer would call the option --ROLE
            click_type=click.Choice(ROLES),
            metavar="ROLE",
            help=f"only this role; choices: {', '.join(ROLES)} [all]",
        ),
    ] = None,
) -> int:
    """Devices with status, role, platform, app version and interaction count, one a line."""
    db = get_database(StorageSettings.read())
    with db.transaction() as session:
        rows = list_devices(session=session, status=status, role=role)
    print(
        f"{'device':32}  {'status':8}  {'role':8}  {'platform':10}  {'app':8}  {'rows':>7}"
        "  last seen"
    )
    for d in rows:
        seen = d.last_seen_at.strftime("%Y-%m-%d %H:%M") if d.last_seen_at else "-"
        print(
            f"{d.id:32}  {d.status:8}  {d.role:8}  {d.platform[:10]:10}  {d.app_version[:8]:8}"
            f"  {d.interactions:>7}  {seen}"
        )
    return 0


def _set(device_ids: list[str], status: str) -> int:
    """Set the status of the named devices; exit 1 naming any unknown id."""
    db = get_database(StorageSettings.read())
    with db.transaction(write=True) as session:
        found = set_status(session=session, device_ids=device_ids, status=status)
    return _report(device_ids, dict.fromkeys(found, status))


@app.command()
def approve(device_ids: DeviceIds) -> int:
    """Let pending (or revoked) devices upload feedback."""
    return _set(device_ids, "active")


@app.command()
def revoke(device_ids: DeviceIds) -> int:
    """Refuse these devices' tokens from now on (401 at once, on every worker)."""
    return _set(device_ids, "revoked")


Role = Annotated[
    str,
    typer.Argument(
        click_type=click.Choice([r for r in ROLES if r != "user"]),
        metavar="ROLE",
        help="reviewer: reads others' uncertain and low-rated answers and corrects them",
    ),
]
Actor = Annotated[str | None, typer.Option(help="who, for the data audit trail [the login name]")]


def _set_role(device_ids: list[str], role: str, actor: str | None) -> int:
    """Give the named devices a role, in the data audit trail; exit 1 naming any unknown id.

    A reviewer reads other users' prompts and answers, so who was granted that, by whom and
    when is recorded beside erasures (`distillery data audit`).
    """
    db = get_database(StorageSettings.read())
    with db.transaction(write=True) as session:
        found = set_role(session=session, device_ids=device_ids, role=role)
        query = select(Device.id, Device.status).where(Device.id.in_(found))
        statuses: dict[str, str] = dict(session.execute(query).tuples().all())
        if found:
            record_event(
                session=session,
                action="role",
                actor=actor or _login(),
                subject=f"role {role}: {', '.join(found)}",
                counts={"devices": len(found)},
            )
    notes = {d: "" if statuses.get(d) == "active" else f" ({statuses[d]})" for d in found}
    return _report(device_ids, {d: f"{role}{notes[d]}" for d in found})


def _report(device_ids: list[str], done: dict[str, str]) -> int:
    """A ✓ line per changed device with what it is now; exit 1 naming any unknown id."""
    for device_id in device_ids:
        if device_id in done:
            print(f"✓ {device_id}: {done[device_id]}")
    missing = [d for d in device_ids if d not in done]
    if missing:
        print(f"✗ unknown device id(s): {', '.join(missing)} (see `distillery devices list`)")
        return 1
    return 0


@app.command()
def grant(role: Role, device_ids: DeviceIds, actor: Actor = None) -> int:
    """Give devices a role: `grant reviewer ID` lets that device's web page review answers.

    Applies to the device's next request, on every worker.
    """
    return _set_role(device_ids, role, actor)


@app.command("revoke-role")
def revoke_role(device_ids: DeviceIds, actor: Actor = None) -> int:
    """Take any role back: the devices are plain users again (next request, every worker)."""
    return _set_role(device_ids, "user", actor)
