"""`distillery demo` as a newcomer runs it: a fresh data dir, one cycle, a manifest a phone reads.

Slow (minutes: the real SmolLM2 pair); CI runs it once as its demo step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from serving.schemas import Manifest

REPO = Path(__file__).resolve().parents[2]
STUDENT = "smollm2-pruned-student"

pytestmark = pytest.mark.slow


def _printed_manifest(stdout: str) -> Manifest:
    """The JSON the demo prints after 'a phone polling ... now sees:', as the service's model."""
    head, sep, tail = stdout.partition("/api/models/mobile/latest now sees:\n")
    assert sep, stdout[-2000:]
    return Manifest.model_validate(json.loads(tail))


def _host_paths(data: Path) -> list[str]:
    """`table.column` cells of the demo's database that hold the data dir's absolute path."""
    found = []
    with sqlite3.connect(data / "distillery.db") as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]:
                hits = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE CAST({column} AS TEXT) LIKE ?",
                    (f"%{data.resolve()}%",),
                ).fetchone()[0]
                if hits:
                    found.append(f"{table}.{column}")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_demo_on_a_fresh_data_dir_ends_with_a_decision_and_a_readable_manifest(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLERY_")}
    env["DISTILLERY_DATA_DIR"] = str(data)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "✓ perpetual cycle" in out
    manifest = _printed_manifest(out)
    assert manifest.channel == "stable"
    row = re.search(rf"^\[.*\]\s+{STUDENT}: (\w+)( v(\d+))? — (.+)$", out, re.MULTILINE)
    assert row, out[-3000:]
    status, version, reason = row.group(1), row.group(3), row.group(4)
    published = {m.student: m for m in manifest.models}
    if status == "published":
        # The phone sees the version the cycle published, and every file it lists is on disk
        # with the checksum the phone will verify.
        entry = published[STUDENT]
        assert entry.version == int(str(version))
        for file in entry.files:
            (path,) = (data / "artifacts").rglob(str(file.file_name))
            assert _sha256(path) == file.sha256
    else:
        # The gate said no: the line names the decision and its failed checks, and phones
        # keep what they had (nothing, on a fresh data dir).
        assert status == "rejected", out[-3000:]
        assert reason.startswith("reject: ") and "failed" in reason
        assert STUDENT not in published
    # No host path in the database: every text and JSON column of every table is searched
    # for the data dir (files inside the store are recorded relative to it).
    assert _host_paths(data) == []
    # The answers themselves, on all 64 fixed-benchmark tasks, against what phones had.
    assert re.search(r"answers on fixed benchmark \(n=64, vs (base|stable)\): ROUGE-L ", out)
