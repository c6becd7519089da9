"""`distillery memory`: a plan for a named card, a smaller batch that fits, the README table."""

from __future__ import annotations

import pytest

from cli.main import main


def test_a_plan_for_a_t4(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["memory", "--teacher", "qwen2.5-7b-instruct", "--student", "phi-3-mini-4k-instruct"]
    assert main([*args, "--card", "t4"]) == 0
    out = capsys.readouterr().out
    assert "on T4 16 GB (fp16), batch 4 × 2048 tokens" in out and "teacher weights (NF4)" in out
    assert "does not fit" in out and "✓ fits at batch 1 × accumulation 16" in out, out
    assert main([*args, "--card", "h200"]) == 0
    out = capsys.readouterr().out
    assert ": fits" in out and "✓" not in out, out
    assert main([*args, "--card", "t4", "--batch", "64", "--max-length", "8192"]) == 2
    assert "✗ it does not fit at batch 1 either" in capsys.readouterr().err
    assert main(["memory", "--teacher", "qwen2.5-7b-instruct"]) == 2
    assert "give --teacher and --student" in capsys.readouterr().err


def test_the_cards_table_covers_the_seed_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory", "--cards"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "→" in line][1:]
    assert len(rows) == 9 and all(row.count("|") == 8 for row in rows), rows
