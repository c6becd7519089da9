"""Erasure and retention as Prefect flows: finish pending erasures, apply the retention window."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow
from prefect.artifacts import create_table_artifact

from storage.config import StorageSettings
from storage.db import get_database
from storage.models import utcnow
from storage.repo.erasure import ErasureScope, count_scope, erase_rows, record_event
from tasks.privacy.redact import ErasureDone, finish_erasures, finish_one, sweep_here
from tasks.results import StageResult
from tasks.settings import with_pipeline_settings

RETENTION_ACTOR = "retention"


class ErasureRow(StageResult):
    """One erasure the pass finished."""

    erasure: str
    """Its id."""
    snapshots: int
    """Snapshots whose files held its rows (now rewritten without them)."""
    snapshot_rows: int
    """Rows removed from those files."""
    cache_entries: int
    """Teacher cache entries forgotten."""
    versions: list[str]
    """Versions trained on (or possibly replaying) the erased rows, one line each."""


class RetentionResult(StageResult):
    """What one retention pass erased, or would erase."""

    days: int | None
    """The window in force; None: retention is off."""
    cutoff: str | None
    """Interactions received before this time are erased."""
    interactions: int
    """Interactions erased (or, in a dry run, that would be)."""
    erasure: str | None
    """The erasure that carried it out; None in a dry run or when nothing was due."""
    dry_run: bool
    """True when nothing was changed."""


def _row(done: ErasureDone) -> ErasureRow:
    return ErasureRow(
        erasure=done.erasure_id,
        snapshots=done.snapshots,
        snapshot_rows=done.snapshot_rows,
        cache_entries=done.cache_entries,
        versions=done.version_lines(),
    )


@flow(name="data-erasure", log_prints=True)
@with_pipeline_settings
def data_erasure(sweep: bool = True) -> list[ErasureRow]:
    """Finish every pending erasure: snapshot files rewritten without the rows, teacher cache
    entries forgotten, the versions built on them listed. `sweep`: also clean the snapshot
    copies of the host this pass runs on, which another host's erasure could not reach."""
    database = get_database()
    rows = [_row(done) for done in finish_erasures(database)]
    if sweep:
        swept = sweep_here(database)
        if swept.removed:
            print(f"this host's snapshot copies: removed {swept.removed} erased rows")
    for row in rows:
        print(
            f"erasure {row.erasure}: {row.snapshot_rows} rows out of {row.snapshots} snapshots, "
            f"{row.cache_entries} cache entries; versions: {', '.join(row.versions) or 'none'}"
        )
    create_table_artifact(
        [r.model_dump() for r in rows] or [{"erasure": "none pending"}],
        key="data-erasure",
        description="erasures finished through snapshot files and the teacher cache",
    )
    return rows


@flow(name="retention", log_prints=True)
@with_pipeline_settings
def retention(days: int | None = None, dry_run: bool = False) -> RetentionResult:
    """Erase interactions received more than `days` days ago (default: the
    DISTILLERY_RETENTION_DAYS setting; unset, retention is off and nothing happens)."""
    days = days if days is not None else StorageSettings.read().retention_days
    database = get_database()
    if not days:
        print("retention is off: DISTILLERY_RETENTION_DAYS is not set; nothing erased")
        return RetentionResult(
            days=None, cutoff=None, interactions=0, erasure=None, dry_run=dry_run
        )
    cutoff = utcnow() - timedelta(days=days)
    scope = ErasureScope(before=cutoff)
    erasure_id = None
    with database.transaction(write=not dry_run) as session:
        count = count_scope(session=session, scope=scope)["interactions"]
        if not dry_run:
            if count:
                erasure = erase_rows(
                    session=session,
                    scope=scope,
                    actor=RETENTION_ACTOR,
                    reason=f"older than {days} days",
                    action="retention",
                )
                erasure_id = erasure.id
            else:  # a pass that found nothing is part of the record too
                record_event(
                    session=session,
                    action="retention",
                    actor=RETENTION_ACTOR,
                    subject=f"nothing received before {cutoff.isoformat(timespec='seconds')}",
                    counts={"interactions": 0},
                )
    done = finish_one(database, erasure_id) if erasure_id else None
    verb = "would erase" if dry_run else "erased"
    print(
        f"retention {days} days: {verb} {count} interactions received before "
        f"{cutoff.isoformat(timespec='seconds')}"
        + (
            f"; {done.snapshot_rows} snapshot rows, {done.cache_entries} cache entries"
            if done
            else ""
        )
    )
    result = RetentionResult(
        days=days,
        cutoff=cutoff.isoformat(timespec="seconds"),
        interactions=count,
        erasure=erasure_id,
        dry_run=dry_run,
    )
    create_table_artifact(
        [result.model_dump()], key="retention", description="what the retention pass erased"
    )
    return result
