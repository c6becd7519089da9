"""The retention and data-erasure flows as Prefect runs: old rows go, recent ones stay, and
each pass is in the audit trail."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.privacy import data_erasure, retention
from storage.db import get_database
from storage.models import DataAuditEvent, Interaction, utcnow
from storage.repo.erasure import ErasureScope, erase_rows, get_erasure
from tests.tasks.prepare.conftest import insert, make_row

REPO = Path(__file__).resolve().parents[2]


def test_retention_erases_what_is_older_than_the_window(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    db = get_database()
    now = utcnow()
    insert(db, [make_row(n) for n in range(10)], device="a", received_at=now - timedelta(days=40))
    insert(
        db, [make_row(n) for n in range(10, 15)], device="a", received_at=now - timedelta(days=2)
    )
    insert(
        db, [make_row(n) for n in range(20, 23)], device="b", received_at=now - timedelta(days=31)
    )

    off = retention()  # DISTILLERY_RETENTION_DAYS unset: off, nothing touched
    assert (off.days, off.interactions, off.erasure) == (None, 0, None)
    monkeypatch.setenv("DISTILLERY_RETENTION_DAYS", "30")
    dry = retention(dry_run=True)
    assert (dry.days, dry.interactions, dry.erasure) == (30, 13, None)
    with db.transaction() as session:
        assert len(list(session.scalars(select(Interaction.id)))) == 18  # a dry run changes nothing

    result = retention()
    assert (result.interactions, result.dry_run) == (13, False) and result.erasure
    with db.transaction() as session:
        left = {int(i.int) - 1 for i in session.scalars(select(Interaction.id))}
        erasure = get_erasure(session=session, erasure_id=result.erasure)
        assert erasure is not None and erasure.status == "done"  # files done in the same pass
        assert erasure.actor == "retention"
    assert left == set(range(10, 15))
    again = retention()
    assert (again.interactions, again.erasure) == (0, None)
    with db.transaction() as session:
        trail = [(e.action, e.counts.get("interactions")) for e in session.scalars(
            select(DataAuditEvent).order_by(DataAuditEvent.id))]  # fmt: skip
    assert trail == [("retention", 13), ("retention", 0)]


def test_the_erasure_flow_finishes_pending_erasures(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    db = get_database()
    insert(db, [make_row(n) for n in range(4)], device="a")
    with db.transaction(write=True) as session:
        erasure_id = erase_rows(session=session, scope=ErasureScope(device_id="a"), actor="a").id
    [row] = data_erasure()
    assert (row.erasure, row.snapshot_rows, row.versions) == (erasure_id, 0, [])
    assert data_erasure() == []


def test_the_erasure_flows_load_no_model_stack() -> None:
    # They run every 15 minutes on any worker: hashing records must not pull in torch or
    # transformers (the canonical hash lives in tasks/distill/hashing.py for this).
    code = (
        "import sys, flows.privacy\n"
        "print(','.join(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
