"""`distillery data`: a dry run counts, an erasure goes through to done, the audit lists it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cli.main import main
from storage.db import Database
from storage.models import utcnow
from storage.repo.feedback import FeedbackRow, insert_feedback_batch
from tests.tasks.prepare.conftest import insert, make_row


def test_erase_a_device_from_the_command_line(
    sqlite_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", sqlite_db.url.render_as_string())
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    insert(sqlite_db, [make_row(n) for n in range(5)], device="phone-a")
    insert(sqlite_db, [make_row(n) for n in range(5, 8)], device="phone-b")

    assert main(["data", "erasures"]) == 0
    assert "no erasures yet" in capsys.readouterr().out
    assert main(["data", "erase"]) == 2
    assert "✗ say what to erase: --device ID, --before DATE, or both" in capsys.readouterr().err
    assert main(["data", "erase", "--before", "last tuesday"]) == 2
    assert "is not a date; give YYYY-MM-DD" in capsys.readouterr().err

    assert main(["data", "erase", "--device", "phone-z"]) == 2
    assert "✗ no device 'phone-z', and no data of it" in capsys.readouterr().err
    assert main(["data", "erase", "--device", "phone-a", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would erase 5 interactions (0 of them chat turns) and 0 revisions" in out, out
    assert (
        main(["data", "erase", "--device", "phone-a", "--actor", "dpo", "--reason", "ticket 7"])
        == 0
    )
    out = capsys.readouterr().out
    assert "interactions and 0 revisions deleted (device phone-a)" in out, out
    assert "✓ 0 rows removed from 0 snapshots, 0 teacher cache entries forgotten" in out, out
    assert main(["data", "erase", "--device", "phone-a", "--dry-run"]) == 0
    assert "would erase 0 interactions" in capsys.readouterr().out

    assert main(["data", "erasures"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and " dpo " in out, out
    with sqlite_db.transaction(write=True) as session:  # an upload whose user said "none"
        rows = [FeedbackRow(uuid.uuid4(), "m", "1", "p", "r", utcnow(), consent="none")] * 2
        insert_feedback_batch(session=session, device_id="phone-b", interactions=rows)
    assert main(["data", "audit"]) == 0
    out = capsys.readouterr().out
    assert "erase" in out and "interactions=5" in out and "ticket 7" in out, out
    assert f"{utcnow().date()}  2             1" in out, out
