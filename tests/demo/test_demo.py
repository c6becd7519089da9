"""`distillery demo` as a newcomer runs it: a fresh data dir, one cycle, a delta a phone reads.

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


def _served_path(data: Path, url: str) -> Path:
    """The artifact-root file behind a manifest URL (.../api/artifacts/<key>)."""
    _, sep, key = url.partition("/api/artifacts/")
    assert sep, url
    return data / "artifacts" / key


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_demo_on_a_fresh_data_dir_publishes_a_delta_a_phone_can_read(tmp_path: Path) -> None:
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
    # Seed 0 on a fresh data dir: the gate passes v1 on its answers (ROUGE-L +0.062
    # [+0.025, +0.105] here), so a rejection is a regression of the recipe, not bad luck.
    row = re.search(rf"^\[.*\]\s+{STUDENT}: published v1 — promote: ", out, re.MULTILINE)
    assert row, out[-3000:]
    entry = {m.student: m for m in manifest.models}[STUDENT]
    assert entry.version == 1
    # Every file it lists is where its URL points, with the checksum the phone will verify.
    for file in entry.files:
        assert _sha256(_served_path(data, file.url)) == file.sha256, file.url
    # Whichever rung the phone file is, a phone holding the base takes only the adapter.
    assert entry.base is not None and entry.adapter is not None, out[-3000:]
    assert entry.adapter.base_sha256 == entry.base.sha256
    assert entry.base.quantization == entry.quantization
    assert entry.adapter.size and entry.size and entry.adapter.size < entry.size / 10
    # No host path in the database: every text and JSON column of every table is searched
    # for the data dir (files inside the store are recorded relative to it).
    assert _host_paths(data) == []
    # The answers themselves, on all 64 fixed-benchmark tasks, against what phones had.
    assert re.search(r"answers on fixed benchmark \(n=64, vs (base|stable)\): ROUGE-L ", out)
