"""Cached builds (tiny fixtures, shape tokenizers) appear whole or not at all, and only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.models.tiny_seed import build_once


def test_builds_once_then_reuses_the_complete_copy(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(into: Path) -> None:
        calls.append(into)
        (into / "weights.bin").write_bytes(b"x")
        (into / "done.json").write_text("{}")

    final = tmp_path / "cache" / "model"
    assert build_once(final, "done.json", build) == final
    assert build_once(final, "done.json", build) == final
    assert len(calls) == 1 and calls[0] != final  # built beside it, then renamed
    assert sorted(p.name for p in final.iterdir()) == ["done.json", "weights.bin"]
    assert [p.name for p in final.parent.iterdir()] == ["model"]


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def build(into: Path) -> None:
        (into / "half.bin").write_bytes(b"x")
        raise RuntimeError("out of disk")

    final = tmp_path / "cache" / "model"
    with pytest.raises(RuntimeError, match="out of disk"):
        build_once(final, "done.json", build)
    assert list(final.parent.iterdir()) == []
