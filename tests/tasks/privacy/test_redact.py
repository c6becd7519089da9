"""An erasure followed through real snapshot files and a real teacher cache: the device's rows
leave every split and cache namespace, every other row and entry stays byte for byte."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from storage.db import Database
from storage.layout import layout
from storage.models import DatasetSnapshot, ModelVersion
from storage.repo.erasure import ErasureScope, erase_rows, get_erasure
from tasks.distill.hashing import record_hash
from tasks.distill.teacher_cache import TeacherCache
from tasks.prepare import PrepareConfig, build_snapshot, load_negatives, load_snapshot
from tasks.privacy.redact import finish_erasures, finish_one, sweep_here
from tests.tasks.prepare.conftest import insert, make_row


def _rows(start: int, count: int) -> list[dict[str, Any]]:
    """Rows numbered from `start`; every fifth rated 1 with no correction (a negative)."""
    return [make_row(n, rating=1 if n % 5 == 0 else 5) for n in range(start, start + count)]


def _contents(path: Path) -> dict[str, dict[str, Any]]:
    """Every row of every part of a snapshot folder, keyed by part and id."""
    parts = dict(load_snapshot(path).items())
    parts["negatives"] = load_negatives(path)
    return {name: {row["id"]: row for row in data} for name, data in parts.items()}


def _cache(snapshots: list[Path]) -> tuple[TeacherCache, dict[str, str]]:
    """A teacher cache with one entry per record (whole conversation and prompt alone)."""
    cache = TeacherCache.open(
        kind="topk", teacher_id="t", revision="r", tokenizer_hash="h", max_length=64
    )
    owner: dict[str, str] = {}
    for path in snapshots:
        for part in _contents(path).values():
            for record_id, row in part.items():
                for messages in (row["messages"], row["messages"][:-1]):
                    key = record_hash(messages)
                    cache.put(key, {"x": torch.zeros(2)})
                    owner[key] = record_id
    return cache, owner


def test_an_erasure_leaves_snapshots_and_cache_with_everything_else_intact(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    root = layout().artifact_root
    insert(db, _rows(0, 30), device="p1")
    insert(db, _rows(100, 30), device="p2")
    config = PrepareConfig(min_chars=1)
    first = build_snapshot(db, config=config, artifact_root=root, settle_seconds=0)
    insert(db, _rows(30, 10), device="p1")
    insert(db, _rows(130, 10), device="p2")
    second = build_snapshot(db, config=config, artifact_root=root, settle_seconds=0)
    assert first.path and second.path and first.snapshot_id and second.snapshot_id
    with db.transaction(write=True) as session:
        for version, snapshot_id in ((1, first.snapshot_id), (2, second.snapshot_id)):
            session.add(
                ModelVersion(student="smol", version=version, base_model="b",
                             snapshot_id=snapshot_id, status="published")
            )  # fmt: skip
    erased_ids = {str(uuid.UUID(int=n + 1)) for n in range(100, 140)}
    before = {p: _contents(p) for p in (first.path, second.path)}
    assert any(i in erased_ids for part in before[first.path].values() for i in part)
    cache, owner = _cache([first.path, second.path])

    with db.transaction(write=True) as session:
        erasure = erase_rows(session=session, scope=ErasureScope(device_id="p2"), actor="p2")
        erasure_id = erasure.id
    done = finish_one(db, erasure_id)

    removed = 0
    for path, old in before.items():
        new = _contents(path)
        for part, rows in old.items():
            kept = {i: r for i, r in rows.items() if i not in erased_ids}
            assert new[part] == kept, f"{path.name}/{part}"  # others: every field unchanged
            removed += len(rows) - len(kept)
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["redactions"][0]["erasure"] == erasure_id
    assert removed == done.snapshot_rows > 0 and done.snapshots == 2
    entries = {k: cache.path(k).is_file() for k in owner}
    assert all(entries[k] == (owner[k] not in erased_ids) for k in owner)  # theirs only
    assert done.cache_entries == sum(1 for k in owner if owner[k] in erased_ids)
    assert [(v["version"], v["how"]) for v in done.versions] == [
        (1, "trained on"), (2, "trained on")
    ]  # fmt: skip
    with db.transaction() as session:
        row = get_erasure(session=session, erasure_id=erasure_id)
        assert row is not None and row.status == "done" and row.finished_at is not None
        assert row.counts["snapshot_rows"] == removed
        redactions = session.get(DatasetSnapshot, first.snapshot_id).redactions
        assert redactions and redactions[0]["erasure"] == erasure_id
    assert finish_erasures(db) == []  # nothing left pending

    # A snapshot built afterwards has no trace of them either.
    insert(db, _rows(40, 5), device="p1")
    third = build_snapshot(db, config=config, artifact_root=root, settle_seconds=0)
    assert third.path is not None
    ids = {i for part in _contents(third.path).values() for i in part}
    assert ids and not ids & erased_ids


def test_a_stale_copy_on_another_host_is_swept(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    insert(sqlite_db, _rows(0, 20), device="p1")
    insert(sqlite_db, _rows(100, 20), device="p2")
    info = build_snapshot(
        sqlite_db, config=PrepareConfig(min_chars=1), artifact_root=layout().artifact_root,
        settle_seconds=0,
    )  # fmt: skip
    assert info.path is not None
    stale = tmp_path / "stale"
    shutil.copytree(info.path, stale)  # another worker's copy, made before the erasure
    with sqlite_db.transaction(write=True) as session:
        erasure_id = erase_rows(session=session, scope=ErasureScope(device_id="p2"), actor="x").id
    finish_one(sqlite_db, erasure_id)
    clean = _contents(info.path)
    shutil.rmtree(info.path)
    shutil.copytree(stale, info.path)  # that worker's disk, where this host could not reach
    assert _contents(info.path) != clean
    swept = sweep_here(sqlite_db)
    assert sum(swept.removed.values()) > 0
    assert _contents(info.path) == clean
    assert sweep_here(sqlite_db).removed == {}  # a second sweep finds nothing
