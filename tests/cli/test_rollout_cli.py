"""`distillery rollout`: start, status with the watcher's view, widen, abort, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from storage.db import Database
from tests.serving.catalog_rows import add_version, write_artifact


def test_a_rollout_from_the_command_line(
    sqlite_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISTILLERY_DATABASE_URL", sqlite_db.url.render_as_string())
    for version in (1, 2):
        entry = write_artifact(tmp_path, f"models/smol/{version}/smol.Q8_0.gguf", b"x" * 64)
        add_version(sqlite_db, "smol", version, [entry], stable=version == 1)

    assert main(["rollout", "status"]) == 0
    assert "no rollouts" in capsys.readouterr().out
    start = ["rollout", "start", "smol", "--version", "2", "--percent", "10", "--actor", "alice"]
    assert main([*start, "--reason", "weekly v2"]) == 0
    assert "✓ smol v2: on 10 % of devices (rollout 1, stable v1)" in capsys.readouterr().out
    assert main(["rollout", "status", "smol"]) == 0
    out = capsys.readouterr().out
    assert "smol     1        v2      v1      10 %   active" in out, out
    # No live feedback yet: the policy waits, and says for what.
    assert "wait smol v2 vs v1: 0 of 50 interactions to decide" in out, out
    assert main(["rollout", "widen", "smol", "--percent", "50"]) == 0
    assert "on 50 % of devices" in capsys.readouterr().out
    assert main(start) == 2
    assert "✗ smol already has a rollout (id 1, 50 %)" in capsys.readouterr().err
    assert main(["rollout", "abort", "smol", "--reason", "thumbs down"]) == 0
    assert "aborted: every device is on stable" in capsys.readouterr().out
    assert main(["rollout", "abort", "smol"]) == 2
    assert "has no rollout running" in capsys.readouterr().err
    assert main(["rollout", "start", "smol", "--version", "1"]) == 2
    assert "v1 is already stable" in capsys.readouterr().err
    assert main(["rollout", "start", "smol", "--version", "9"]) == 2
    assert "has no version 9" in capsys.readouterr().err
