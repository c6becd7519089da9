"""Build or reuse a versioned dataset snapshot from interactions, and find earlier ones."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from storage.artifact_store import ArtifactMissingError, artifact_store
from storage.config import StorageSettings
from storage.db import Database
from storage.layout import Layout
from storage.models import DatasetSnapshot
from storage.repo.erasure import record_event
from storage.repo.snapshots import add_snapshot, find_snapshot, latest_snapshot, list_snapshots
from tasks.prepare.config import PrepareConfig, SnapshotInfo
from tasks.prepare.device_cap import DROP_REASON, over_cap_ids
from tasks.prepare.process import FirstPass
from tasks.prepare.reader import examined_rows, reader_available
from tasks.prepare.select import select_window
from tasks.prepare.store import MANIFEST, carried_splits, read_manifest, write_snapshot

log = logging.getLogger(__name__)

READER_MIN_ROWS = 50_000  # below this, starting processes costs more than they save
READERS = 2  # reader processes: with this one, they keep two cores busy


def code_version() -> str:
    """A hash of this stage's source: a code change gives new fingerprints."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_snapshot(
    db: Database,
    *,
    config: PrepareConfig,
    artifact_root: Path,
    settle_seconds: float | None = None,
    since: int | None = None,
    now: datetime | None = None,
    readers: int | None = None,
) -> SnapshotInfo:
    """Turn interactions newer than the last watermark (or `since`) into a snapshot.

    Reuses the snapshot with the same fingerprint when one exists; returns the latest one
    with `skipped_reason` when no new interactions have settled. `readers` processes (default:
    READERS for windows of READER_MIN_ROWS rows or more, else 0) read and examine rows
    beside this one, which keeps the ordered steps.
    """
    settings = StorageSettings.read()
    if settle_seconds is None:
        settle = settings.settle_seconds(db.url.render_as_string(hide_password=False))
    else:
        settle = settle_seconds
    root = Layout(settings.data_dir.resolve(), Path(artifact_root).resolve()).snapshots()
    root.mkdir(parents=True, exist_ok=True)
    with db.transaction() as session:
        parent = latest_snapshot(session=session)
        after = since if since is not None else (parent.watermark if parent else 0)
        # An explicit `since` rebuilds a chosen range: nothing is carried over into it.
        window = select_window(
            session, after=after, config=config, settle_seconds=settle, now=now, carry=since is None
        )
        if window.new_count == 0:
            info = _info(parent) if parent else SnapshotInfo(None, None, None, watermark=after)
            info.skipped_reason = "no new interactions" + (
                f" older than {settle:g} s (newer ones wait for the next snapshot, as concurrent "
                "uploads may still be committing; set DISTILLERY_WATERMARK_SETTLE_SECONDS=0 "
                "when nothing else writes)"
                if settle > 0
                else ""
            )
            return info
        carried = carried_splits(_present([Path(s.path) for s in list_snapshots(session=session)]))
        work = root / f".work-{uuid.uuid4().hex}"
        work.mkdir()
        try:
            first = FirstPass(config, work, carried)
            if readers is None:
                big = window.new_count + len(window.replay_seqs) >= READER_MIN_ROWS
                readers = READERS if big and _readers_ok(db) else 0
            try:
                capped = over_cap_ids(session, window, config)
                rows = examined_rows(db, window, config, first.pii, readers=readers)
                for record_id, result in rows:
                    first.take(record_id, DROP_REASON if record_id in capped else result)
            finally:
                first.close()
            version = code_version()
            fingerprint = _fingerprint(first, config, version)
            existing = find_snapshot(session=session, fingerprint=fingerprint)
            if existing is not None:
                return _info(existing, reason="snapshot exists", new=window.new_count)
            stats = {
                **first.stats(),
                "new": window.new_count,
                "carried": window.carried,
                "replay": len(window.replay_seqs) - window.carried,
            }
            manifest: dict[str, Any] = {
                "fingerprint": fingerprint,
                "code_version": version,
                "config": config.to_dict(),
                "watermark": window.upto,
                "since": window.after,
                "parent": parent.fingerprint if parent else None,
                "new_records": window.new_count,
            }
            final = root / fingerprint
            if (final / MANIFEST).is_file():  # saved by an earlier run that did not record it
                manifest = read_manifest(final)
            else:
                thresholds = first.caps.thresholds() if config.group_cap else None
                write_snapshot(work, final, thresholds, {**manifest, "filter_stats": stats})
                manifest = read_manifest(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    # In the shared store before the row names it: a worker that reads the row finds it.
    artifact_store().push(final)
    return _record(db, final, manifest, parent.id if parent else None)


def previous_test_splits(db: Database, *, before_snapshot_id: int | None = None) -> list[Path]:
    """Test-split directories of earlier snapshots (oldest first), for measuring forgetting."""
    with db.transaction() as session:
        rows = list_snapshots(session=session)
    wanted = [r for r in rows if before_snapshot_id is None or r.id < before_snapshot_id]
    present = _present([Path(r.path) for r in wanted])
    return [path / "test" for path in present if (path / "test").is_dir()]


def _present(snapshot_dirs: list[Path]) -> list[Path]:
    """The snapshots this host has or can fetch from the store; a lost one is left out, logged."""
    present = []
    for path in snapshot_dirs:
        try:
            present.append(artifact_store().fetch(path))
        except ArtifactMissingError as exc:
            log.warning("earlier snapshot missing: %s", exc)
    return present


def _readers_ok(db: Database) -> bool:
    """Reader processes can open this database (not in-memory) and start here."""
    return db.url.database not in (None, "", ":memory:") and reader_available()


def _fingerprint(first: FirstPass, config: PrepareConfig, version: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    digest.update(version.encode())
    digest.update(first.members.digest())
    digest.update(first.overrides.digest())
    return digest.hexdigest()


def _record(
    db: Database, final: Path, manifest: dict[str, Any], parent: int | None
) -> SnapshotInfo:
    """Insert the snapshot row; a concurrent identical build that won the race is reused."""
    fingerprint = manifest["fingerprint"]
    try:
        with db.transaction(write=True) as session:
            row = find_snapshot(session=session, fingerprint=fingerprint)
            if row is None:
                row = add_snapshot(
                    session=session,
                    fingerprint=fingerprint,
                    watermark=manifest["watermark"],
                    path=str(final),
                    code_version=manifest["code_version"],
                    config=manifest["config"],
                    split_sizes=manifest["split_sizes"],
                    filter_stats=manifest["filter_stats"],
                    parent_id=parent,
                )
                held_out = manifest["filter_stats"].get("consent_evaluate_only", 0)
                if held_out:  # the consent-driven exclusion goes in the data audit trail
                    record_event(
                        session=session,
                        action="consent",
                        actor="prepare",
                        subject=f"snapshot {row.id}: evaluate-only rows kept out of training",
                        counts={"evaluate_only": held_out},
                    )
    except IntegrityError:
        with db.transaction() as session:
            raced = find_snapshot(session=session, fingerprint=fingerprint)
        if raced is None:
            raise
        row = raced
    return _info(row, new=manifest["new_records"])


def _info(row: DatasetSnapshot, *, reason: str | None = None, new: int = 0) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=row.id,
        fingerprint=row.fingerprint,
        path=Path(row.path),
        split_sizes=dict(row.split_sizes),
        new_records=new,
        skipped_reason=reason,
        watermark=row.watermark,
        filter_stats=dict(row.filter_stats),
    )
