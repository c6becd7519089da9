"""`distillery data erase|sweep|erasures|audit`: users' data, erased on request, accounted for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.commands.models import _database, _login, _when, table
from cli.errors import UserError
from storage.models import Device
from storage.repo.erasure import (
    ErasureScope,
    audit_events,
    count_scope,
    erase_rows,
    list_erasures,
    not_stored_per_day,
)

app = typer.Typer(help="Users' data: erase it (a device's, or everything before a date), audit.")


def _date(text: str | None) -> datetime | None:
    """YYYY-MM-DD or an ISO time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"--before {text!r} is not a date; give YYYY-MM-DD or 2026-12-01T08:00:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command()
def erase(
    device: Annotated[
        str | None, typer.Option(metavar="ID", help="erase this device's data [none]")
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="erase what was received before this date [none]"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be erased, change nothing")
    ] = False,
    reason: Annotated[str, typer.Option(help="why, kept in the audit trail")] = "",
    actor: Annotated[str | None, typer.Option(help="who [the login name]")] = None,
) -> int:
    """Erase interactions, their revisions and chat turns, then their copies in dataset
    snapshots and the teacher cache; lists the versions that were trained on them."""
    if device is None and before is None:
        raise UserError("say what to erase: --device ID, --before DATE, or both")
    scope = ErasureScope(device_id=device, before=_date(before))
    database = _database()
    if device is not None:
        with database.transaction() as session:
            known = session.get(Device, device) is not None
            has_rows = count_scope(session=session, scope=scope)["interactions"] > 0
        if not known and not has_rows:
            raise UserError(
                f"no device {device!r}, and no data of it (see `distillery devices list`)"
            )
    if dry_run:
        with database.transaction() as session:
            counts = count_scope(session=session, scope=scope)
        print(
            f"would erase {counts['interactions']} interactions ({counts['chat_turns']} of "
            f"them chat turns) and {counts['revisions']} revisions: {scope.describe()}"
        )
        return 0
    with database.transaction(write=True) as session:
        erasure = erase_rows(session=session, scope=scope, actor=actor or _login(), reason=reason)
        erasure_id, counts = erasure.id, dict(erasure.counts)
    print(
        f"✓ erasure {erasure_id}: {counts['interactions']} interactions and "
        f"{counts['revisions']} revisions deleted ({scope.describe()})"
    )
    print("  removing copies from dataset snapshots and the teacher cache …", flush=True)
    from tasks.privacy.redact import finish_one  # reads snapshot files: loaded only here

    done = finish_one(database, erasure_id)
    print(
        f"✓ {done.snapshot_rows} rows removed from {done.snapshots} snapshots, "
        f"{done.cache_entries} teacher cache entries forgotten"
    )
    for line in done.version_lines():
        print(f"  {line}")
    if done.versions:
        print(
            "  set DISTILLERY_ERASURE_RETRAIN=1 so the next cycle trains these students "
            "from the base instead"
        )
    return 0


@app.command()
def sweep() -> int:
    """On this host: finish pending erasures, then drop erased rows from the snapshot copies
    this host holds (a worker whose copies predate an erasure another host finished)."""
    from tasks.privacy.redact import finish_erasures, sweep_here

    database = _database()
    for done in finish_erasures(database):
        print(f"✓ erasure {done.erasure_id}: {done.snapshot_rows} snapshot rows removed")
    swept = sweep_here(database)
    rows = sum(swept.removed.values())
    print(f"✓ this host: {rows} erased rows removed from its snapshot copies")
    return 0


@app.command()
def erasures(
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
) -> int:
    """Erasures with their status, counts and the versions built on erased rows."""
    with _database().transaction() as session:
        rows = list_erasures(session=session, limit=limit)
        lines = [
            (
                e.id,
                e.status,
                _when(e.requested_at),
                e.actor,
                str(e.counts.get("interactions", 0)),
                str(e.counts.get("snapshot_rows", "-")),
                str(len(e.versions or [])),
            )
            for e in rows
        ]
    if not lines:
        print("no erasures yet")
        return 0
    header = ("erasure", "status", "requested", "by", "rows", "snapshot rows", "versions")
    print(table(header, lines))
    return 0


@app.command()
def audit(
    limit: Annotated[int, typer.Option(min=1, help="how many lines, newest first")] = 50,
    days: Annotated[int, typer.Option(min=1, help="days of not-stored uploads to sum up")] = 30,
) -> int:
    """Everything done to users' data: erasures, retention passes, consent exclusions, and
    per day the uploads that consent (or an earlier erasure) kept out of the database."""
    since = datetime.now(UTC) - timedelta(days=days)
    with _database().transaction() as session:
        refused = not_stored_per_day(session=session, since=since)
        lines = [
            (
                _when(e.created_at),
                e.action,
                e.actor,
                " ".join(f"{k}={v}" for k, v in sorted(e.counts.items())),
                e.subject,
            )
            for e in audit_events(session=session, limit=limit)
        ]
    if not lines and not refused:
        print("nothing recorded yet")
        return 0
    if lines:
        print(table(("when", "action", "by", "counts", "what"), lines))
    if refused:
        print(f"\nnot stored at upload (consent none, or erased before), last {days} days:")
        print(
            table(("day", "interactions", "devices"), [(d, str(n), str(k)) for d, n, k in refused])
        )
    return 0
