"""Snapshots built from the self-instruct seed tasks, and an isolated data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tasks.distill.snapshots import save_snapshot, seed_records


@pytest.fixture(scope="session")
def distill_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir per session: tiny presets materialize once."""
    return tmp_path_factory.mktemp("distill-data")


@pytest.fixture(autouse=True)
def _data_dir(distill_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(distill_data_dir))
    return distill_data_dir


@pytest.fixture
def make_snapshot(tmp_path: Path) -> Callable[..., Path]:
    """Build a snapshot of `n_train` seed records (from `offset`) and 4 validation records."""

    def make(name: str = "snap", n_train: int = 12, offset: int = 0, n_val: int = 4) -> Path:
        val = seed_records(n_val, offset=150)
        return save_snapshot(tmp_path / name, seed_records(n_train, offset), val)

    return make
