"""The adapter of a run has one reader: the recorded one, else the folder rule; never None
when it is missing (a cycle must not silently cold-start or gate against the base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.layout import layout
from storage.models import TrainingRun
from tasks.cycle import MissingAdapterError, run_adapter


def adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(tmp_path / "store"))
    return (tmp_path / "store").resolve()


def test_the_recorded_adapter_is_relative_to_the_store_and_resolves_on_another_root(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kd = adapter(root / "runs" / "students" / "s" / "snapshot-1" / "adapter")
    stored = layout().stored(kd)
    assert stored == "runs/students/s/snapshot-1/adapter"  # no host path in the database
    run = TrainingRun(id=7, adapter_path=stored, output_dir="/elsewhere/gone")
    assert run_adapter(run) == str(kd)
    # The same row read on a host whose store is mounted elsewhere.
    other = tmp_path / "host-b"
    adapter(other / stored)
    monkeypatch.setenv("DISTILLERY_ARTIFACT_ROOT", str(other))
    assert run_adapter(run) == str(other.resolve() / stored)


def test_a_recorded_adapter_that_is_missing_is_an_error_naming_it(root: Path) -> None:
    run = TrainingRun(id=3, adapter_path="runs/students/s/snapshot-2/preference/adapter")
    with pytest.raises(MissingAdapterError, match="snapshot-2/preference/adapter"):
        run_adapter(run)


def test_runs_recorded_before_the_column_use_the_folder_rule(tmp_path: Path) -> None:
    out = tmp_path / "run"
    kd = adapter(out / "adapter")
    assert run_adapter(TrainingRun(id=1, output_dir=str(out))) == str(kd)
    preferred = adapter(out / "preference" / "adapter")
    assert run_adapter(TrainingRun(id=1, output_dir=str(out))) == str(preferred)
    with pytest.raises(MissingAdapterError, match="deleted"):
        run_adapter(TrainingRun(id=2, output_dir=str(tmp_path / "deleted")))
    assert run_adapter(TrainingRun(id=4)) is None  # no folder recorded: nothing to start from
