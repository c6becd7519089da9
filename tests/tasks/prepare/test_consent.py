"""Consent in prepare: evaluate-only rows are held out of training, and the audit says so."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from storage.db import Database
from storage.models import DataAuditEvent
from tasks.prepare import PrepareConfig, build_snapshot, load_negatives, load_snapshot
from tests.tasks.prepare.conftest import insert, make_row


def test_evaluate_only_rows_never_reach_training(db: Database, tmp_path: Path) -> None:
    rows = [make_row(n, consent="evaluate" if n % 3 == 0 else "train") for n in range(90)]
    rows += [make_row(n, rating=1, consent="evaluate") for n in range(200, 210)]  # negatives
    insert(db, rows)
    info = build_snapshot(db, config=PrepareConfig(), artifact_root=tmp_path, settle_seconds=0)
    assert info.path is not None
    evaluate_only = {str(uuid.UUID(int=n + 1)) for n in [*range(0, 90, 3), *range(200, 210)]}
    splits = load_snapshot(info.path)
    assert not set(splits["train"]["id"]) & evaluate_only
    held_out = set(splits["test"]["id"]) | set(splits["validation"]["id"])
    assert {i for i in evaluate_only if int(uuid.UUID(i)) <= 90} <= held_out  # kept, held out
    assert not {r["id"] for r in load_negatives(info.path) if r["split"] == "train"} & evaluate_only
    assert len(set(splits["train"]["id"])) > 30  # the consenting rows still train
    assert info.filter_stats["consent_evaluate_only"] == 40
    with db.transaction() as session:
        [event] = session.scalars(select(DataAuditEvent))
    assert (event.action, event.counts) == ("consent", {"evaluate_only": 40})
    assert f"snapshot {info.snapshot_id}" in event.subject
