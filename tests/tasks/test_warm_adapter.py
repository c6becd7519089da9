"""The next cycle warm-starts from the adapter the gate passed (the preference one when on)."""

from __future__ import annotations

from pathlib import Path

from tasks.cycle import _adapter_of


def adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_kd_adapter_when_there_is_no_preference_stage(tmp_path: Path) -> None:
    kd = adapter(tmp_path / "adapter")
    assert _adapter_of(str(tmp_path)) == str(kd)


def test_preference_adapter_wins_over_the_kd_one(tmp_path: Path) -> None:
    adapter(tmp_path / "adapter")
    preferred = adapter(tmp_path / "preference" / "adapter")
    assert _adapter_of(str(tmp_path)) == str(preferred)


def test_none_when_the_run_output_is_gone(tmp_path: Path) -> None:
    assert _adapter_of(str(tmp_path / "deleted")) is None
