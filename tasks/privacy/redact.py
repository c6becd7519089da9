"""Finish erasures: drop tombstoned rows from snapshot files, forget their teacher signals.

The rows left SQL when the erasure was asked for (storage/repo/erasure.py). What remains is
every copy built from them: the split files of versioned snapshots (read again by replay,
re-evaluation and preference training), and teacher cache entries keyed by their hashes.
Snapshot files are rewritten without the rows, on this host and in the shared store, and
the snapshot row records the redaction so results built on it are still explained.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.artifact_store import ArtifactMissingError, ArtifactStore, artifact_store
from storage.db import Database
from storage.layout import layout
from storage.models import DatasetSnapshot, ModelVersion, utcnow
from storage.repo.erasure import erased_ids, finish_erasure, pending_erasures
from tasks.distill.hashing import record_hash
from tasks.prepare.columns import StreamWriter
from tasks.prepare.store import DATA_FILE, MANIFEST

log = logging.getLogger(__name__)
PARTS = ("train", "validation", "test", "negatives")  # the folders of a snapshot with rows


@dataclass
class Redaction:
    """What one pass removed from one snapshot folder."""

    removed: dict[str, int] = field(default_factory=dict)  # part -> rows
    hashes: set[str] = field(default_factory=set)  # teacher cache keys of the removed rows


@dataclass
class ErasureDone:
    """One finished erasure: the rows its file step removed and the versions it touched."""

    erasure_id: str
    snapshots: int
    snapshot_rows: int
    cache_entries: int
    versions: list[dict[str, Any]]  # {student, agent, version, how}

    def version_lines(self) -> list[str]:
        """One line per version built on the erased rows."""
        return [version_line(v) for v in self.versions]


def version_line(entry: dict[str, Any]) -> str:
    """`smol v3: trained on erased rows` (agent versions name their agent)."""
    agent = f" ({entry['agent']})" if entry.get("agent") else ""
    return f"{entry['student']}{agent} v{entry['version']}: {entry['how']} erased rows"


def redact_folder(folder: Path, tombstones: set[str]) -> Redaction:
    """Rewrite each part of a snapshot folder without the tombstoned ids (atomically).

    Batch by batch, as prepare wrote them: a part without a hit is only read, never copied.
    """
    done = Redaction()
    wanted = pa.array(sorted(tombstones), pa.string())
    for part in PARTS:
        data = folder / part / DATA_FILE
        if not data.is_file():
            continue
        count = sum(_hits(batch, wanted) for batch in _batches(data))
        if not count:
            continue
        temp = data.with_name(f".redact-{uuid.uuid4().hex[:8]}")
        writer: StreamWriter | None = None
        for batch in _batches(data):
            hit = pc.is_in(batch.column("id"), value_set=wanted)
            for messages in batch.filter(hit).column("messages").to_pylist():
                done.hashes |= _cache_keys(messages)
            writer = writer or StreamWriter(temp, batch.schema)
            writer.write_batch(batch.filter(pc.invert(hit)))
        assert writer is not None  # a part with hits has batches
        writer.close()
        os.replace(temp, data)
        done.removed[part] = count
    return done


def _batches(data: Path) -> Iterator[pa.RecordBatch]:
    with pa.OSFile(str(data)) as source:  # plain reads: a memory map would count as RSS
        yield from pa.ipc.open_stream(source)


def _hits(batch: pa.RecordBatch, wanted: pa.Array) -> int:
    return int(pc.sum(pc.is_in(batch.column("id"), value_set=wanted)).as_py() or 0)


def _cache_keys(messages: list[dict[str, str]]) -> set[str]:
    """The teacher cache keys a record can have: its whole conversation (top-k signals) and
    its prompt alone (generated answers)."""
    keys = {record_hash(messages)}
    if len(messages) > 1:
        keys.add(record_hash(messages[:-1]))
    return keys


def forget_cache_entries(hashes: set[str], root: Path | None = None) -> int:
    """Delete the entries of these record hashes from every teacher cache namespace, here
    and in the shared store; how many files went."""
    root = root or layout().teacher_cache()
    if not hashes or not root.is_dir():
        return 0
    namespaces = [d for d in root.iterdir() if d.is_dir()]
    paths = [ns / h[:2] / f"{h}.safetensors" for ns in namespaces for h in hashes]
    removed = 0
    for path in paths:
        if path.is_file():
            path.unlink()
            removed += 1
    store = ArtifactStore.from_settings(local_root=layout().data_dir)
    if store.shared and root.resolve().is_relative_to(store.local_root):
        removed += store.remove(paths)
    return removed


def finish_erasures(db: Database) -> list[ErasureDone]:
    """Carry every pending erasure through the snapshot files and the teacher cache."""
    with db.transaction() as session:
        pending = [e.id for e in pending_erasures(session=session)]
    return [finish_one(db, erasure_id) for erasure_id in pending]


def finish_one(db: Database, erasure_id: str) -> ErasureDone:
    """Redact the snapshots holding this erasure's rows, forget their cache entries, list
    the versions built on them, and mark the erasure done."""
    with db.transaction() as session:
        tombstones = erased_ids(session=session, erasure_id=erasure_id)
        snapshots = [(s.id, Path(s.path)) for s in session.scalars(select(DatasetSnapshot))]
    store = artifact_store()
    touched: dict[int, Redaction] = {}
    hashes: set[str] = set()
    for snapshot_id, path in snapshots:
        try:
            folder = store.fetch(path)
        except ArtifactMissingError as exc:
            log.warning("snapshot %s is gone, nothing to redact: %s", snapshot_id, exc)
            continue
        redaction = redact_folder(folder, tombstones) if tombstones else Redaction()
        if redaction.removed:
            _note_in_manifest(folder, erasure_id, redaction)
            store.push(folder)  # the store's copy loses the rows too
            touched[snapshot_id] = redaction
            hashes |= redaction.hashes
    cache_entries = forget_cache_entries(hashes)
    with db.transaction(write=True) as session:
        versions = _versions_built_on(session, set(touched))
        for snapshot_id, redaction in touched.items():
            row = session.get(DatasetSnapshot, snapshot_id)
            if row is not None:
                entry = {"erasure": erasure_id, "removed": redaction.removed, "at": _now()}
                row.redactions = [*(row.redactions or []), entry]
        counts = {
            "snapshots_redacted": len(touched),
            "snapshot_rows": sum(sum(r.removed.values()) for r in touched.values()),
            "cache_entries": cache_entries,
        }
        finish_erasure(session=session, erasure_id=erasure_id, counts=counts, versions=versions)
    return ErasureDone(
        erasure_id, counts["snapshots_redacted"], counts["snapshot_rows"], cache_entries, versions
    )


def sweep_here(db: Database) -> Redaction:
    """On this host: drop every tombstoned row from the snapshot folders it holds, and
    forget their teacher cache entries. For a worker whose working copies were made
    before an erasure another host finished (copies are not fetched here, only cleaned)."""
    with db.transaction() as session:
        tombstones = erased_ids(session=session)
        snapshots = [(s.id, Path(s.path)) for s in session.scalars(select(DatasetSnapshot))]
    total = Redaction()
    for _, folder in snapshots:
        if not tombstones or not (folder / MANIFEST).is_file():
            continue
        redaction = redact_folder(folder, tombstones)
        if redaction.removed:
            _note_in_manifest(folder, "sweep", redaction)
            for part, count in redaction.removed.items():
                total.removed[part] = total.removed.get(part, 0) + count
            total.hashes |= redaction.hashes
    forget_cache_entries(total.hashes)
    return total


def _versions_built_on(session: Session, snapshot_ids: set[int]) -> list[dict[str, Any]]:
    """Versions trained on one of these snapshots, or on a later one whose replay may have
    drawn from it (replay samples every earlier snapshot's train split)."""
    if not snapshot_ids:
        return []
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.snapshot_id >= min(snapshot_ids))
        .order_by(ModelVersion.student, ModelVersion.version)
    )
    return [
        {
            "student": row.student,
            "agent": row.agent,
            "version": row.version,
            "how": "trained on" if row.snapshot_id in snapshot_ids else "may replay",
        }
        for row in rows
    ]


def _note_in_manifest(folder: Path, erasure_id: str, redaction: Redaction) -> None:
    """The snapshot's own manifest says what was removed after it was built, and why."""
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.setdefault("redactions", []).append(
        {"erasure": erasure_id, "removed": redaction.removed, "at": _now()}
    )
    temp = path.with_name(f".{MANIFEST}.{uuid.uuid4().hex[:8]}")
    temp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(temp, path)


def _now() -> str:
    return utcnow().isoformat(timespec="seconds")
